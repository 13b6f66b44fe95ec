// Stored files (issue 33): metadata and listings through RTK Query; uploads (with progress),
// downloads and previews with the session's bearer token, since a plain link or <img src>
// could not send it.
//
// The types below are written by hand until web/openapi.json describes files; once
// `scripts/sync-openapi.sh` has brought them in, point `FileView` and `FilePage` at the generated
// schemas in shared/api/types.ts (the server calls them `File` and `FilePage`: alias `File` to
// `FileView`, it would hide the DOM's File) and delete these copies.
import { useMemo } from 'react';
import { useStore } from 'react-redux';
import type { Dispatch, UnknownAction } from '@reduxjs/toolkit';
import { api, isAuthFailure } from '@/app/api';
import { apiUrl } from '@/app/config';
import { refreshSession } from '@/app/refresh';
import { selectTokens, type SessionState } from '@/app/session';
import { apiErrorInfo, type ApiErrorInfo } from '@/shared/api/errors';
import type { FilePage, FileView } from '@/shared/api/types';
import type { UploadFile, UploadOptions } from '@/shared/ui/schema-form';

export interface FileListArgs {
  task?: string;
  owner?: string;
  cursor?: string;
  limit?: number;
}

export const filesApi = api.injectEndpoints({
  endpoints: (build) => ({
    getFile: build.query<FileView, string>({
      query: (id) => `/files/${encodeURIComponent(id)}`,
      providesTags: (_r, _e, id) => [{ type: 'File', id }],
    }),
    listFiles: build.query<FilePage, FileListArgs>({
      query: (args) => ({ url: '/files', params: { ...args } }),
      providesTags: ['File'],
    }),
    /** The files the task's agent uploaded (`ctx.upload`). */
    getTaskArtifacts: build.query<{ items: FileView[] }, string>({
      query: (taskId) => `/tasks/${encodeURIComponent(taskId)}/artifacts`,
      providesTags: (_r, _e, taskId) => [{ type: 'TaskArtifacts', id: taskId }],
    }),
    deleteFile: build.mutation<void, string>({
      query: (id) => ({ url: `/files/${encodeURIComponent(id)}`, method: 'DELETE' }),
      invalidatesTags: (_r, _e, id) => [{ type: 'File', id }, 'File', 'TaskArtifacts'],
    }),
  }),
});

export const { useGetFileQuery, useListFilesQuery, useGetTaskArtifactsQuery, useDeleteFileMutation } = filesApi;

/** What the requests below need of the store: the session's tokens, and refreshing them. */
export interface StoreLike {
  dispatch: Dispatch<UnknownAction>;
  getState: () => unknown;
}

/** A failed file request, with the server's error (`apiErrorInfo`) and a message for people. */
export class FileRequestError extends Error {
  readonly info: ApiErrorInfo;
  constructor(info: ApiErrorInfo, message = info.message) {
    super(message);
    this.name = 'FileRequestError';
    this.info = info;
  }
}

const NETWORK_ERROR = { status: 'FETCH_ERROR', error: 'network' } as const;

function accessToken(store: StoreLike): string | null {
  return selectTokens(store.getState() as { session: SessionState })?.accessToken ?? null;
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Why an upload failed, said for the person who picked the file. */
export function uploadErrorMessage(info: ApiErrorInfo): string {
  if (info.code === 'file_too_large') return `the file is too large for this server (${info.message})`;
  if (info.code === 'quota_exceeded') return `your file storage is full (${info.message})`;
  if (info.status === 413) return `the file is too large (${info.message})`;
  if (info.code === 'invalid_file') return `the server refused the file (${info.message})`;
  if (info.status === 403) return 'you are not allowed to upload files';
  if (info.code === 'route_not_found') return 'this server does not store files';
  return info.message;
}

/** Refreshes a token about to expire first, so a big upload is not sent twice. */
async function freshToken(store: StoreLike): Promise<string | null> {
  const tokens = selectTokens(store.getState() as { session: SessionState });
  if (tokens && tokens.expiresAt - Date.now() < 30_000) await refreshSession(store, tokens.accessToken);
  return accessToken(store);
}

interface Sent {
  status: number;
  body: unknown;
}

function sendUpload(file: Blob, name: string, token: string | null, contentType: string, options: UploadOptions): Promise<Sent> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new DOMException('The upload was cancelled', 'AbortError'));
      return;
    }
    // XMLHttpRequest, not fetch: only it reports upload progress.
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl(`/api/v1/files?name=${encodeURIComponent(name)}`));
    if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
    if (contentType) xhr.setRequestHeader('content-type', contentType);
    xhr.upload.onprogress = (e) => options.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => resolve({ status: xhr.status, body: parseBody(xhr.responseText) });
    xhr.onerror = () => reject(new FileRequestError(apiErrorInfo(NETWORK_ERROR)!));
    xhr.onabort = () => reject(new DOMException('The upload was cancelled', 'AbortError'));
    options.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

/**
 * `POST /files?name=…` with the raw bytes and the file's type as `Content-Type` (none when the
 * browser does not know it: the server guesses from the name). Resolves with the new file.
 */
export async function uploadFile(store: StoreLike, file: Blob, { name, contentType, ...options }: UploadOptions & { name: string; contentType?: string }): Promise<FileView> {
  const type = contentType ?? file.type;
  let token = await freshToken(store);
  let sent = await sendUpload(file, name, token, type, options);
  if (sent.status === 401 && token !== null && isAuthFailure({ status: 401, data: sent.body })) {
    if ((await refreshSession(store, token)) === 'refreshed') {
      token = accessToken(store);
      sent = await sendUpload(file, name, token, type, options);
    }
  }
  if (sent.status === 201 || sent.status === 200) return sent.body as FileView;
  const info = apiErrorInfo({ status: sent.status, data: sent.body })!;
  throw new FileRequestError(info, uploadErrorMessage(info));
}

/** The form's uploader (`SchemaForm uploadFile`), bound to this app's session. */
export function useFileUpload(): UploadFile {
  const store = useStore();
  return useMemo<UploadFile>(() => (file, options) => uploadFile(store, file, { name: file.name, ...options }), [store]);
}

/** A fetch of an API path with the session's token, refreshing it once on a 401. */
export async function fetchWithAuth(store: StoreLike, path: string, init: RequestInit = {}): Promise<Response> {
  const attempt = (token: string | null) => {
    const headers = new Headers(init.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    return fetch(apiUrl(path), { ...init, headers });
  };
  const token = accessToken(store);
  let response: Response;
  try {
    response = await attempt(token);
    if (response.status === 401 && token !== null && isAuthFailure({ status: 401, data: await response.clone().json().catch(() => undefined) })) {
      if ((await refreshSession(store, token)) === 'refreshed') response = await attempt(accessToken(store));
    }
  } catch (err) {
    if (err instanceof Error && err.name === 'AbortError') throw err;
    throw new FileRequestError(apiErrorInfo(NETWORK_ERROR)!);
  }
  if (!response.ok) {
    const body: unknown = await response.json().catch(() => undefined);
    throw new FileRequestError(apiErrorInfo({ status: response.status, data: body })!);
  }
  return response;
}

/** `GET /files/{id}/content`; `range` asks for the first bytes only (`Range: bytes=0-(range-1)`). */
export function fetchFileContent(store: StoreLike, id: string, { range, signal }: { range?: number; signal?: AbortSignal } = {}): Promise<Response> {
  return fetchWithAuth(store, `/api/v1/files/${encodeURIComponent(id)}/content`, {
    signal,
    headers: range !== undefined ? { range: `bytes=0-${range - 1}` } : undefined,
  });
}

/** At most `limit` bytes of a response's body, without reading the rest. */
export async function readPrefix(response: Response, limit: number): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array(await response.arrayBuffer()).slice(0, limit);
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  // Not awaited: some streams settle their cancel only once the source is done.
  if (size >= limit) void reader.cancel().catch(() => undefined);
  const out = new Uint8Array(Math.min(size, limit));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, out.length - at);
    out.set(part, at);
    at += part.length;
    if (at >= out.length) break;
  }
  return out;
}

/**
 * Saves a file as the browser's download: fetched with the session's token into a blob URL
 * (an <a href> to the API could not send the token).
 */
export async function downloadFile(store: StoreLike, file: Pick<FileView, 'id' | 'name'>): Promise<void> {
  const blob = await (await fetchFileContent(store, file.id)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = file.name;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  // Revoked later: the browser reads the blob after the click returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export type { FilePage, FileView };
