// A task's files: those its input references (`{"$file": id}`), the artifacts its agent
// uploaded, and any other file its output references. Shown only for tasks that have files.
import { useMemo } from 'react';
import { FileIdList, FileList } from '@/features/files/components/FileList';
import { useGetTaskArtifactsQuery } from '@/features/files/filesApi';
import { isNotAvailable } from '@/shared/api/errors';
import type { Task } from '@/shared/api/types';
import { fileRefIds } from '@/shared/lib/files';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';

export function TaskFiles({ task }: { task: Task }) {
  const inputIds = useMemo(() => fileRefIds(task.input), [task.input]);
  const outputIds = useMemo(() => fileRefIds(task.output), [task.output]);
  const artifacts = useGetTaskArtifactsQuery(task.id);
  const items = artifacts.currentData?.items ?? [];
  // A file gets one entry on the page: output references to artifacts or input files link there.
  const listed = new Set([...inputIds, ...items.map((f) => f.id)]);
  const otherOutput = artifacts.currentData ? outputIds.filter((id) => !listed.has(id)) : [];
  const artifactsError = artifacts.error && !isNotAvailable(artifacts.error) ? artifacts.error : null;

  if (inputIds.length === 0 && outputIds.length === 0 && items.length === 0 && !artifactsError) return null;
  return (
    <section className="card task-files" aria-labelledby="task-files-title">
      <h2 id="task-files-title">Files</h2>
      {inputIds.length > 0 && (
        <>
          <h3>Input files</h3>
          <FileIdList ids={inputIds} label="Input files" />
        </>
      )}
      <h3>Artifacts</h3>
      {artifactsError ? (
        <ErrorAlert error={artifactsError} title="Could not load the artifacts" onRetry={artifacts.refetch} />
      ) : !artifacts.currentData ? (
        <Loading label="Loading the artifacts…" />
      ) : items.length === 0 ? (
        <p className="muted">The task's agent has uploaded no files.</p>
      ) : (
        <FileList files={items} label="Artifacts" />
      )}
      {otherOutput.length > 0 && (
        <>
          <h3>Output files</h3>
          <FileIdList ids={otherOutput} label="Output files" />
        </>
      )}
    </section>
  );
}
