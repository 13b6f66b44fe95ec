// Loads what a file's preview shows: an image as a blob URL (revoked when no longer shown), or
// the first PREVIEW_BYTES of a text or JSON file, decoded (JSON pretty-printed when whole).
import { useEffect, useState } from 'react';
import { useStore } from 'react-redux';
import { errorMessage } from '@/shared/api/errors';
import { PREVIEW_BYTES, previewKind, previewText } from '@/shared/lib/files';
import { FileRequestError, fetchFileContent, readPrefix, type FileView } from './filesApi';

export type FilePreviewState =
  | { status: 'none' }
  | { status: 'loading' }
  | { status: 'error'; message: string }
  | { status: 'image'; url: string }
  | { status: 'text'; text: string; json: boolean; truncated: boolean };

export function useFilePreview(file: Pick<FileView, 'id' | 'name' | 'size' | 'content_type'>, load: boolean): FilePreviewState {
  const store = useStore();
  const kind = previewKind(file.content_type, file.name);
  const [state, setState] = useState<FilePreviewState>({ status: 'none' });

  useEffect(() => {
    if (!kind || !load) {
      setState({ status: 'none' });
      return;
    }
    const ctrl = new AbortController();
    let url: string | null = null;
    setState({ status: 'loading' });
    (async () => {
      if (kind === 'image') {
        const blob = await (await fetchFileContent(store, file.id, { signal: ctrl.signal })).blob();
        if (ctrl.signal.aborted) return;
        url = URL.createObjectURL(blob);
        setState({ status: 'image', url });
        return;
      }
      const big = file.size > PREVIEW_BYTES;
      const response = await fetchFileContent(store, file.id, { signal: ctrl.signal, range: big ? PREVIEW_BYTES : undefined });
      const bytes = await readPrefix(response, PREVIEW_BYTES);
      if (ctrl.signal.aborted) return;
      const truncated = file.size > bytes.length;
      setState({ status: 'text', truncated, ...previewText(bytes, kind, truncated) });
    })().catch((err: unknown) => {
      if (ctrl.signal.aborted) return;
      setState({ status: 'error', message: err instanceof FileRequestError ? err.message : errorMessage(err) });
    });
    return () => {
      ctrl.abort();
      if (url) URL.revokeObjectURL(url);
    };
  }, [store, file.id, file.size, kind, load]);

  return state;
}
