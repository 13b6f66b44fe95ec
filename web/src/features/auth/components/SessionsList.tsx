// Where you are signed in, with a way to sign out a session you do not recognise.
import { isNotAvailable } from '@/shared/api/errors';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { useEndSessionMutation, useListSessionsQuery } from '../authApi';

function device(userAgent: string | null | undefined): string {
  if (!userAgent) return 'Unknown client';
  const browser = /(Firefox|Edg|Chrome|Chromium|Safari)\/[\d.]+/.exec(userAgent)?.[0]?.replace('Edg', 'Edge');
  const os = /(Windows|Mac OS X|Linux|Android|iPhone|iPad)/.exec(userAgent)?.[0];
  return [browser, os].filter(Boolean).join(' on ') || userAgent.slice(0, 60);
}

export function SessionsList() {
  const { data, error, isLoading, refetch } = useListSessionsQuery();
  const [end] = useEndSessionMutation();
  if (isNotAvailable(error)) return null;
  return (
    <section aria-labelledby="sessions-title">
      <h2 id="sessions-title">Where you are signed in</h2>
      {error ? (
        <ErrorAlert error={error} title="Could not load your sessions" onRetry={refetch} />
      ) : isLoading || !data ? (
        <Loading label="Loading sessions…" />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Your sessions</caption>
            <thead>
              <tr>
                <th scope="col">Client</th>
                <th scope="col">Address</th>
                <th scope="col">Signed in</th>
                <th scope="col">Last active</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((s) => (
                <tr key={s.id}>
                  <td>
                    {device(s.user_agent)}
                    {s.current && <span className="tag">this one</span>}
                  </td>
                  <td className="mono">{s.ip ?? '—'}</td>
                  <td>
                    <RelativeTime iso={s.created_at} />
                  </td>
                  <td>
                    <RelativeTime iso={s.last_refreshed_at} />
                  </td>
                  <td className="row-actions">
                    {!s.current && (
                      <ConfirmButton
                        className="btn btn-small btn-danger"
                        label="Sign out"
                        aria-label={`Sign out the session from ${device(s.user_agent)}`}
                        title="Sign out this session?"
                        message="Its tokens stop working at once."
                        confirmLabel="Sign it out"
                        danger
                        onConfirm={() => end(s.id).unwrap()}
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
