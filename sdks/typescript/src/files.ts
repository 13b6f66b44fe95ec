// Files: what the Client and the Worker share to upload and download file bytes. Reading and
// writing paths on disk needs Node; its modules are imported when a path is used, never at the
// top level, so the Client still bundles for browsers.
import { ConnectionError, errorFromResponse } from "./errors.js";

/** A stored file as the server describes it (`FileView`; field names as on the wire). */
export interface FileInfo {
  id: string;
  name: string;
  size: number;
  content_type: string;
  /** Hex SHA-256 of the bytes (also the content's `ETag`). */
  sha256: string;
  /** RFC 3339. */
  created_at: string;
  /** The owning user; `null` for files no user owns. */
  owner: string | null;
  /** The task whose agent uploaded it (artifacts only). */
  task_id?: string;
  [key: string]: unknown;
}

/** One page of `listFiles`, newest first; `next_cursor` is there when more follow. */
export interface FilePage {
  items: FileInfo[];
  next_cursor?: string;
}

/** What `listFiles` filters by and where a page starts. */
export interface ListFilesOptions {
  /** Only the artifacts of this task. */
  task?: string;
  /** Only the files of this user. */
  owner?: string;
  /** The `next_cursor` of the previous page. */
  cursor?: string;
  /** At most this many items (the server caps it). */
  limit?: number;
}

/** An input file of a task (`ctx.files`, by file id), as the worker's `assign` describes it. */
export interface InputFile {
  name: string;
  size: number;
  content_type: string;
  sha256: string;
}

/**
 * What can be uploaded: bytes, a `Blob`, a web `ReadableStream` of bytes, or a string, which is
 * the path of a file (Node only) that is streamed from disk, never read whole.
 */
export type UploadData = Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array> | string;

/** The `http(s)://` base of a server URL given as `http(s)://` or `ws(s)://`, without a trailing `/`. */
export function httpBase(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  if (trimmed.startsWith("ws://")) return "http://" + trimmed.slice(5);
  if (trimmed.startsWith("wss://")) return "https://" + trimmed.slice(6);
  return trimmed;
}

/** A URL the server gave as a path (`/api/v1/…`), resolved against its HTTP base. */
export function resolveUrl(base: string, url: string): string {
  if (/^https?:\/\//.test(url)) return url;
  return httpBase(base) + (url.startsWith("/") ? url : `/${url}`);
}

/** A request body for `data`, and the name a path or a named `File` suggests. */
export interface UploadBody {
  body: Uint8Array | Blob | ReadableStream<Uint8Array>;
  /** Set for a stream: fetch must be told it sends the body while the response may come. */
  duplex?: "half";
  /** The file's own name (a path's base name, a `File`'s name), if it has one. */
  name?: string;
}

export async function uploadBody(data: UploadData): Promise<UploadBody> {
  if (typeof data === "string") return pathBody(data);
  if (data instanceof Uint8Array) return { body: data };
  if (data instanceof ArrayBuffer) return { body: new Uint8Array(data) };
  if (typeof Blob !== "undefined" && data instanceof Blob) {
    const name = (data as { name?: unknown }).name;
    return typeof name === "string" && name !== "" ? { body: data, name } : { body: data };
  }
  if (typeof ReadableStream !== "undefined" && data instanceof ReadableStream) return { body: data, duplex: "half" };
  throw new TypeError("upload data must be a Uint8Array, an ArrayBuffer, a Blob, a ReadableStream or a file path");
}

/** A file on disk as a stream, opened now so that a missing file is reported here, by path. */
async function pathBody(path: string): Promise<UploadBody> {
  const { fs, stream, basename } = await nodeModules("upload a file path");
  let stats: Awaited<ReturnType<typeof fs.promises.stat>>;
  try {
    stats = await fs.promises.stat(path);
  } catch (e) {
    throw new Error(`cannot upload ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!stats.isFile()) throw new Error(`cannot upload ${path}: not a regular file`);
  const readable = fs.createReadStream(path, { highWaterMark: 256 * 1024 });
  // Node's web stream and the global ReadableStream are one class under two declarations.
  const body = stream.Readable.toWeb(readable) as unknown as ReadableStream<Uint8Array>;
  return { body, duplex: "half", name: basename(path) };
}

/**
 * Sends `init` to `url` with `fetch`: a network failure is a `ConnectionError`, an error answer
 * a `SwitchyardError` with the server's code and message.
 */
export async function send(doFetch: typeof fetch, what: string, url: string, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await doFetch(url, init);
  } catch (e) {
    if (init.signal?.aborted) throw init.signal.reason;
    throw new ConnectionError(`${what}: ${(e as Error).message}`, { cause: e });
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

/** POSTs an upload to `url` (which carries its query) and answers the server's `FileInfo`. */
export async function postUpload(
  doFetch: typeof fetch,
  url: string,
  upload: UploadBody,
  headers: Record<string, string>,
  contentType: string | undefined,
  signal?: AbortSignal,
): Promise<FileInfo> {
  const h: Record<string, string> = { ...headers };
  // Left out, the server guesses the type from the name (fetch adds none for these bodies).
  if (contentType !== undefined) h["content-type"] = contentType;
  const init: RequestInit & { duplex?: "half" } = { method: "POST", headers: h, body: upload.body };
  if (upload.duplex !== undefined) init.duplex = upload.duplex;
  if (signal !== undefined) init.signal = signal;
  const response = await send(doFetch, "upload", url, init);
  return (await response.json()) as FileInfo;
}

/** The bytes of a successful content response. */
export async function readBytes(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

/** Streams a successful content response to `path` (Node only); a partial file is removed. */
export async function writeTo(response: Response, path: string): Promise<void> {
  const { fs, stream, pipeline } = await nodeModules("download to a file path");
  const out = fs.createWriteStream(path);
  try {
    const source = response.body === null ? stream.Readable.from([]) : stream.Readable.fromWeb(response.body);
    await pipeline(source, out);
  } catch (e) {
    out.destroy();
    await fs.promises.rm(path, { force: true }).catch(() => {});
    throw e;
  }
}

async function nodeModules(what: string) {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (typeof proc?.versions?.node !== "string") throw new TypeError(`${what}: file paths need Node`);
  const [fs, stream, streamPromises, path] = await Promise.all([
    import("node:fs"),
    import("node:stream"),
    import("node:stream/promises"),
    import("node:path"),
  ]);
  return { fs, stream, pipeline: streamPromises.pipeline, basename: path.basename };
}
