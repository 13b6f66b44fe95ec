// How the form uploads a file for a file property (`"format": "file"` or `contentMediaType`).
// The form itself makes no requests: the page that shows it passes `uploadFile` (see
// features/files/filesApi.ts, `useFileUpload`), and a file field fills in `{"$file": id}`.
import { createContext } from 'react';

export interface UploadedFile {
  id: string;
  name: string;
  size: number;
  content_type: string;
}

export interface UploadOptions {
  /** Bytes sent so far, of `total`. */
  onProgress?: (loaded: number, total: number) => void;
  /** Aborting it cancels the upload (the promise rejects with an `AbortError`). */
  signal?: AbortSignal;
}

/** Uploads a file; rejects with an `Error` whose message says why, for people. */
export type UploadFile = (file: File, options?: UploadOptions) => Promise<UploadedFile>;

export const UploadContext = createContext<UploadFile | null>(null);
