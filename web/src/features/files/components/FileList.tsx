// A list of stored files: each with its name, size, type, a download button and a preview for
// images, text and JSON. Entries have the id `file-<id>`, so links in JSON can point at them.
import { useState } from 'react';
import { useStore } from 'react-redux';
import { apiErrorInfo, errorMessage } from '@/shared/api/errors';
import { IMAGE_PREVIEW_AUTO_BYTES, PREVIEW_BYTES, previewKind } from '@/shared/lib/files';
import { formatBytes, formatDateTime } from '@/shared/lib/format';
import { JsonCode } from '@/shared/ui/JsonView';
import { Loading } from '@/shared/ui/Feedback';
import { downloadFile, useGetFileQuery, type FileView } from '../filesApi';
import { useFilePreview } from '../useFilePreview';

/** The element id of a file's entry on the page. */
export function fileAnchor(id: string): string {
  return `file-${id}`;
}

function DownloadButton({ file }: { file: FileView }) {
  const store = useStore();
  const [state, setState] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  const download = async () => {
    setState({ busy: true, error: null });
    try {
      await downloadFile(store, file);
      setState({ busy: false, error: null });
    } catch (err) {
      setState({ busy: false, error: err instanceof Error ? err.message : errorMessage(err) });
    }
  };
  return (
    <>
      <button type="button" className="btn btn-small" onClick={download} disabled={state.busy} aria-label={`Download ${file.name}`}>
        {state.busy ? 'Downloading…' : 'Download'}
      </button>
      {state.error && (
        <span className="field-errors" role="alert">
          Could not download {file.name}: {state.error}
        </span>
      )}
    </>
  );
}

export function FilePreview({ file }: { file: FileView }) {
  const kind = previewKind(file.content_type, file.name);
  const [asked, setAsked] = useState(false);
  const auto = kind !== 'image' || file.size <= IMAGE_PREVIEW_AUTO_BYTES;
  const preview = useFilePreview(file, auto || asked);
  if (!kind) return null;
  if (!auto && !asked) {
    return (
      <button type="button" className="btn btn-small btn-link" onClick={() => setAsked(true)}>
        Show a preview ({formatBytes(file.size)})
      </button>
    );
  }
  const label = `Preview of ${file.name}`;
  switch (preview.status) {
    case 'none':
      return null;
    case 'loading':
      return <Loading label={`Loading the preview of ${file.name}…`} />;
    case 'error':
      return <p className="field-errors">No preview: {preview.message}</p>;
    case 'image':
      return (
        <figure className="file-preview" aria-label={label}>
          <img src={preview.url} alt={file.name} />
        </figure>
      );
    case 'text':
      return (
        <figure className="file-preview" aria-label={label}>
          {preview.json || kind === 'json' ? <JsonCode text={preview.text} /> : <pre className="stream-text file-text" tabIndex={0}>{preview.text}</pre>}
          {preview.truncated && (
            <figcaption className="muted small">
              The first {formatBytes(PREVIEW_BYTES)} of {formatBytes(file.size)}: download the file for the rest.
            </figcaption>
          )}
        </figure>
      );
  }
}

export function FileItem({ file }: { file: FileView }) {
  return (
    <li id={fileAnchor(file.id)} className="file-item" aria-label={file.name} data-file-id={file.id}>
      <div className="file-head">
        <strong className="file-name">{file.name}</strong>
        <span className="muted" title={`${file.size} bytes`}>
          {formatBytes(file.size)}
        </span>
        <span className="tag">{file.content_type}</span>
        <span className="muted small" title={`SHA-256 ${file.sha256}`}>
          {formatDateTime(file.created_at)}
        </span>
        <DownloadButton file={file} />
      </div>
      <FilePreview file={file} />
    </li>
  );
}

/** An entry for a file known only by its id (a `$file` reference): fetched with `GET /files/{id}`. */
export function FileById({ id }: { id: string }) {
  const file = useGetFileQuery(id);
  if (file.currentData) return <FileItem file={file.currentData} />;
  const info = apiErrorInfo(file.error);
  return (
    <li id={fileAnchor(id)} className="file-item" data-file-id={id}>
      {file.error ? (
        <p className="field-errors">
          File <code>{id}</code>: {info?.status === 404 ? 'not found (deleted, or not yours to read)' : errorMessage(file.error)}
        </p>
      ) : (
        <Loading label="Loading the file…" />
      )}
    </li>
  );
}

export function FileList({ files, label }: { files: FileView[]; label: string }) {
  return (
    <ul className="file-list" aria-label={label}>
      {files.map((f) => (
        <FileItem key={f.id} file={f} />
      ))}
    </ul>
  );
}

export function FileIdList({ ids, label }: { ids: string[]; label: string }) {
  return (
    <ul className="file-list" aria-label={label}>
      {ids.map((id) => (
        <FileById key={id} id={id} />
      ))}
    </ul>
  );
}
