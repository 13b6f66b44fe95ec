// An example remote worker: serves `wordcount-ts` (or $AGENT_NAME), which counts the words of
// `text`, streaming each word as partial output and reporting progress; `delay_ms` slows it
// down per word. Stops on SIGINT/SIGTERM after finishing its running tasks.
//
//   npm run build
//   SWITCHYARD_API_KEY=sy_… node build/examples/worker.js http://127.0.0.1:8080
import { PermanentError, Worker } from "@switchyard/sdk";

const url = process.argv[2] ?? "http://127.0.0.1:8080";
const apiKey = process.env["SWITCHYARD_API_KEY"];
if (!apiKey) {
  console.error("set SWITCHYARD_API_KEY to an API key with the worker scope");
  process.exit(2);
}
const workerName = process.env["WORKER_NAME"];
const worker = new Worker({
  url,
  apiKey,
  slots: Number(process.env["WORKER_SLOTS"] ?? 8),
  ...(workerName ? { name: workerName } : {}),
});

worker.agent(
  process.env["AGENT_NAME"] ?? "wordcount-ts",
  {
    description: "Counts the words of `text`, streaming them as it goes.",
    inputSchema: {
      type: "object",
      properties: { text: { type: "string" }, delay_ms: { type: "integer", minimum: 0 } },
      required: ["text"],
    },
  },
  async (ctx, input: { text?: unknown; delay_ms?: number }) => {
    if (typeof input.text !== "string") throw new PermanentError("`text` must be a string");
    const words = input.text.split(/\s+/).filter((w) => w.length > 0);
    await ctx.log("info", `counting ${words.length} words`);
    for (const [i, word] of words.entries()) {
      await ctx.partial(word);
      await ctx.progress((i + 1) / words.length);
      if (input.delay_ms) await new Promise((r) => setTimeout(r, input.delay_ms));
      if (ctx.signal.aborted) return { words: i + 1, stopped: true };
    }
    return { words: words.length, worker: workerName ?? "" };
  },
);

worker.run().then(
  () => {
    console.error("worker drained and stopped");
    process.exit(0);
  },
  (e: unknown) => {
    console.error(`worker stopped: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
