import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, SwitchyardError, type InputFile } from "../src/index.js";
import { agentName, serveAgent, startServer, type TestServer } from "./harness.js";

let server: TestServer;
let client: Client;
let dir: string;

beforeAll(async () => {
  server = await startServer();
  client = new Client({ url: server.url, apiKey: server.clientKey });
  dir = mkdtempSync(join(tmpdir(), "switchyard-ts-files-"));
});
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const UNKNOWN = "01a24490-10d7-701b-90b7-bc5c47d4ea8c";

describe("files", () => {
  it("uploads bytes and a path, lists, downloads (bytes and to disk) with matching sha256, deletes", async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const info = await client.uploadFile(bytes, "blob.bin");
    expect(info).toMatchObject({ name: "blob.bin", size: bytes.length, sha256: sha256(bytes) });
    expect(sha256(await client.downloadFile(info.id))).toBe(info.sha256);
    expect(await client.getFile(info.id)).toEqual(info);

    // A path is streamed from disk; its base name is the file's name.
    const source = join(dir, "notes.txt");
    const text = Buffer.from("line of notes\n".repeat(150_000));
    writeFileSync(source, text);
    const fromPath = await client.uploadFile(source, undefined, "text/plain");
    expect(fromPath).toMatchObject({ name: "notes.txt", size: text.length, sha256: sha256(text) });
    expect(fromPath.content_type).toMatch(/^text\/plain/);
    const dest = join(dir, "notes.copy");
    await client.downloadFileTo(fromPath.id, dest);
    expect(sha256(await readFile(dest))).toBe(fromPath.sha256);

    // Newest first, paged.
    const first = await client.listFiles({ limit: 1 });
    expect(first.items.map((f) => f.id)).toEqual([fromPath.id]);
    expect(first.next_cursor).toBeDefined();
    const second = await client.listFiles({ limit: 1, cursor: first.next_cursor! });
    expect(second.items.map((f) => f.id)).toEqual([info.id]);

    await client.deleteFile(info.id);
    await expect(client.getFile(info.id)).rejects.toMatchObject({ code: "file_not_found", status: 404 });
  });

  it("answers 404 for an unknown file and 422 for a submit naming one", async () => {
    const e1 = await client.getFile(UNKNOWN).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SwitchyardError);
    expect(e1).toMatchObject({ code: "file_not_found", status: 404 });
    await expect(client.downloadFile(UNKNOWN)).rejects.toMatchObject({ code: "file_not_found", status: 404 });
    await expect(client.deleteFile(UNKNOWN)).rejects.toMatchObject({ code: "file_not_found", status: 404 });

    const e2 = await client.submit("echo", { doc: { $file: UNKNOWN } }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(SwitchyardError);
    expect(e2).toMatchObject({ code: "validation_failed", status: 422 });
    expect((e2 as SwitchyardError).message).toMatch(/\/doc/);
  });

  it("gives a remote worker its input file and stores what it uploads as the task's artifacts", async () => {
    const text = "the quick brown fox\n".repeat(50_000);
    const input = await client.uploadFile(new TextEncoder().encode(text), "fox.txt", "text/plain");
    const name = agentName("files");
    interface Output {
      meta: InputFile | undefined;
      sameOnDisk: boolean;
      unknown: string;
      upper: { $file: string };
      copy: { $file: string };
    }
    await serveAgent(
      server,
      name,
      {},
      async (ctx, { doc }: { doc: { $file: string } }): Promise<Output> => {
        const bytes = await ctx.download(doc.$file);
        const onDisk = join(dir, `in-${ctx.taskId}`);
        await ctx.downloadTo(doc.$file, onDisk);
        const unknown = await ctx.download(UNKNOWN).then(
          () => "downloaded",
          (e: unknown) => `${(e as Error).name}: ${(e as Error).message}`,
        );
        const upper = await ctx.upload("upper.txt", new TextEncoder().encode(new TextDecoder().decode(bytes).toUpperCase()), "text/plain");
        const copy = await ctx.upload("copy.txt", onDisk); // streamed from disk
        return {
          meta: ctx.files[doc.$file],
          sameOnDisk: sha256(await readFile(onDisk)) === sha256(bytes),
          unknown,
          upper: { $file: upper },
          copy: { $file: copy },
        };
      },
      async () => {
        const task = await client.submit(name, { doc: { $file: input.id } }, { wait: 30 });
        expect(task.status).toBe("succeeded");
        const out = task.output as Output;
        expect(out.meta).toEqual({ name: "fox.txt", size: input.size, content_type: input.content_type, sha256: input.sha256 });
        expect(out.sameOnDisk).toBe(true);
        expect(out.unknown).toMatch(/PermanentError: .*01a24490-10d7-701b-90b7-bc5c47d4ea8c.*not an input file/);

        const artifacts = await client.taskArtifacts(task.id);
        expect(artifacts.map((a) => a.id).sort()).toEqual([out.upper.$file, out.copy.$file].sort());
        for (const a of artifacts) expect(a.task_id).toBe(task.id);
        const upper = await client.downloadFile(out.upper.$file);
        expect(new TextDecoder().decode(upper)).toBe(text.toUpperCase());
        const copy = artifacts.find((a) => a.id === out.copy.$file)!;
        expect(copy).toMatchObject({ name: "copy.txt", size: input.size, sha256: input.sha256 });
        expect((await client.listFiles({ task: task.id })).items.map((f) => f.id).sort()).toEqual(artifacts.map((a) => a.id).sort());
      },
    );
  });
});
