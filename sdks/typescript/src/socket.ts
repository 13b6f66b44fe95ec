// One WebSocket abstraction over the `ws` package (Node, where headers can be set) and the
// global WebSocket (browsers). Nothing Node-only is imported at the top level, so the Client
// bundles for browsers.
import { ConnectionError, errorFromResponse } from "./errors.js";

export interface Socket {
  send(text: string): void;
  close(code?: number, reason?: string): void;
  /** Messages arrive here; set before the first `await` after `openSocket`. */
  onMessage: (text: string) => void;
  onClose: (code: number, reason: string) => void;
  readonly isOpen: boolean;
}

/**
 * Largest message this SDK accepts from the server (Node): 16 MiB. An `assign` carries the
 * results of the task's durable steps, so it can be far larger than the other messages.
 */
const MAX_INCOMING_MESSAGE_BYTES = 16 * 1024 * 1024;

interface BrowserSocket {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}
type BrowserSocketCtor = new (url: string) => BrowserSocket;

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
}

/** `http(s)://host:port[/prefix]` → `ws(s)://host:port[/prefix]<path>`. */
export function wsUrl(base: string, path: string): string {
  const trimmed = base.replace(/\/+$/, "");
  let rest: string;
  if (trimmed.startsWith("http://")) rest = "ws://" + trimmed.slice(7);
  else if (trimmed.startsWith("https://")) rest = "wss://" + trimmed.slice(8);
  else if (trimmed.startsWith("ws://") || trimmed.startsWith("wss://")) rest = trimmed;
  else throw new TypeError(`invalid server URL ${JSON.stringify(base)}: use http(s)://host:port`);
  return rest + path;
}

/**
 * Opens a WebSocket. A refusal of the upgrade (401/403/…) rejects with a `SwitchyardError`
 * carrying the server's code (Node only: browsers do not expose it); anything else with a
 * `ConnectionError`.
 */
export async function openSocket(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Socket> {
  if (isNode()) return openNodeSocket(url, headers, timeoutMs);
  const Ctor = (globalThis as { WebSocket?: BrowserSocketCtor }).WebSocket;
  if (!Ctor) throw new ConnectionError("no WebSocket implementation in this environment");
  if (Object.keys(headers).length > 0) {
    throw new ConnectionError("this environment cannot set WebSocket headers; authenticate with a token message");
  }
  return openBrowserSocket(Ctor, url, timeoutMs);
}

async function openNodeSocket(url: string, headers: Record<string, string>, timeoutMs: number): Promise<Socket> {
  const { WebSocket } = await import("ws");
  return new Promise<Socket>((resolve, reject) => {
    const ws = new WebSocket(url, { headers, maxPayload: MAX_INCOMING_MESSAGE_BYTES, handshakeTimeout: timeoutMs });
    let settled = false;
    // Frames sent in one turn of the event loop (a burst of results, each with its own
    // `ws.send`) leave in one write: the TCP socket is corked at the first and uncorked
    // once the turn's callbacks and promise reactions have run.
    let tcp: { cork(): void; uncork(): void } | undefined;
    let corked = false;
    const uncork = () => {
      corked = false;
      tcp?.uncork();
    };
    ws.on("upgrade", (res) => (tcp = res.socket));
    const socket: Socket = {
      send: (text) => {
        if (tcp && !corked) {
          corked = true;
          tcp.cork();
          process.nextTick(uncork);
        }
        ws.send(text);
      },
      close: (code, reason) => {
        // What was sent before the close leaves now: the caller may exit the process as
        // soon as this returns (a drained worker), before the deferred uncork runs.
        if (corked) uncork();
        ws.close(code, reason);
      },
      onMessage: () => {},
      onClose: () => {},
      get isOpen() {
        return ws.readyState === WebSocket.OPEN;
      },
    };
    ws.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const response = new Response(body, { status: res.statusCode ?? 500 });
        void errorFromResponse(response).then((e) => {
          settled = true;
          ws.terminate();
          // A 5xx or 429 at the upgrade is a hiccup worth another try; a 4xx is a refusal.
          if ((e.status ?? 500) >= 500 || e.status === 429) reject(new ConnectionError(`${e.code}: ${e.message}`));
          else reject(e);
        });
      });
    });
    ws.on("open", () => {
      settled = true;
      resolve(socket);
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      socket.onMessage(textOf(data));
    });
    ws.on("error", (err) => {
      if (!settled) {
        settled = true;
        reject(new ConnectionError(`cannot connect to ${url}: ${err.message}`, { cause: err }));
      }
    });
    ws.on("close", (code, reason) => {
      if (!settled) {
        settled = true;
        reject(new ConnectionError(`connection to ${url} closed during the handshake (${code})`));
        return;
      }
      socket.onClose(code, reason.toString());
    });
  });
}

/** A text frame as `ws` delivers it (a Buffer by default; fragments or an ArrayBuffer otherwise). */
function textOf(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

function openBrowserSocket(Ctor: BrowserSocketCtor, url: string, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const ws = new Ctor(url);
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        ws.close();
        reject(new ConnectionError(`connecting to ${url} timed out`));
      }
    }, timeoutMs);
    const socket: Socket = {
      send: (text) => ws.send(text),
      close: (code, reason) => ws.close(code, reason),
      onMessage: () => {},
      onClose: () => {},
      get isOpen() {
        return ws.readyState === 1;
      },
    };
    ws.onopen = () => {
      settled = true;
      clearTimeout(timer);
      resolve(socket);
    };
    ws.onerror = () => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(new ConnectionError(`cannot connect to ${url}`));
      }
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") socket.onMessage(ev.data);
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        reject(new ConnectionError(`connection to ${url} closed during the handshake (${ev.code})`));
        return;
      }
      socket.onClose(ev.code, ev.reason);
    };
  });
}

/** Full-jitter backoff pause, like the server's retries: random(0, base), at least 50 ms. */
export function jitter(baseMs: number): number {
  return Math.max(50, Math.random() * baseMs);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
