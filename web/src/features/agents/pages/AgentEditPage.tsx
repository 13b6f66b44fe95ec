import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { usePermissions } from '@/features/auth/permissions';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { JsonView } from '@/shared/ui/JsonView';
import { PageHeader } from '@/shared/ui/PageHeader';
import { AgentForm } from '../components/AgentForm';
import { specOf, useCreateAgentMutation, useDeleteAgentMutation, useGetAgentQuery, useListAgentsQuery, useUpdateAgentMutation } from '../agentsApi';

export function AgentEditPage() {
  const { name } = useParams();
  const creating = name === undefined;
  const navigate = useNavigate();
  const can = usePermissions();
  const agent = useGetAgentQuery(name ?? '', { skip: creating });
  const agents = useListAgentsQuery();
  const [update, updateState] = useUpdateAgentMutation();
  const [create, createState] = useCreateAgentMutation();
  const [remove] = useDeleteAgentMutation();
  const [saved, setSaved] = useState(false);

  if (!creating && agent.isLoading) return <Loading label="Loading the agent…" />;
  if (!creating && !agent.data) {
    return (
      <>
        <PageHeader title={name} />
        <ErrorAlert error={agent.error} title="Could not load the agent" onRetry={agent.refetch} />
        <Link to="/agents">Back to agents</Link>
      </>
    );
  }

  if (!can.canManageAgents) {
    if (creating) return <div className="alert alert-info">Only admins can create agents.</div>;
    return (
      <>
        <PageHeader title={agent.data!.name} description={agent.data!.description ?? undefined} />
        <p className="muted">Only admins can change agents. This is its current definition.</p>
        <div className="card">
          <JsonView value={specOf(agent.data!)} label="Definition" />
        </div>
      </>
    );
  }

  const initial = creating ? null : specOf(agent.data!);
  return (
    <>
      <PageHeader
        title={creating ? 'New agent' : `Edit ${name}`}
        description={<Link to="/agents">All agents</Link>}
        actions={
          !creating &&
          !agent.data!.builtin && (
            <ConfirmButton
              label="Delete"
              title={`Delete ${name}?`}
              message="Tasks already submitted keep their history. New tasks for this agent are refused."
              confirmLabel="Delete agent"
              danger
              onConfirm={async () => {
                await remove(name!).unwrap();
                navigate('/agents');
              }}
            />
          )
        }
      />
      {saved && !updateState.isLoading && (
        <div className="alert alert-success" role="status">
          Saved.
        </div>
      )}
      <AgentForm
        key={creating ? 'new' : agent.data!.updated_at}
        initial={initial}
        agents={agents.data?.items ?? []}
        creating={creating}
        canManageCommandAgents={can.canManageCommandAgents}
        submitting={updateState.isLoading || createState.isLoading}
        error={creating ? createState.error : updateState.error}
        onSubmit={async (spec) => {
          setSaved(false);
          try {
            if (creating) {
              const created = await create(spec).unwrap();
              navigate(`/agents/${encodeURIComponent(created.name)}`);
            } else {
              await update(spec).unwrap();
              setSaved(true);
            }
          } catch {
            // Shown by the form.
          }
        }}
      />
    </>
  );
}
