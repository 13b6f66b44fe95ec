// Dashboard numbers computed in the browser from tasks and queue samples, for servers without
// the metrics API (and for the per-agent table).
import type { QueueStats, Task } from '@/shared/api/types';

export interface Window {
  from: number;
  to: number;
  step: number;
}

export function bucketStarts(w: Window): number[] {
  const out: number[] = [];
  for (let t = w.from; t < w.to; t += w.step) out.push(t);
  return out;
}

function bucketOf(w: Window, t: number): number {
  return Math.floor((t - w.from) / w.step);
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

const FAILED = new Set(['failed', 'dead']);

export interface TaskSeries {
  submitted: number[];
  succeeded: number[];
  failed: number[];
  /** failed / (succeeded + failed) per bucket; null where nothing finished. */
  failureRate: (number | null)[];
  p50: (number | null)[];
  p95: (number | null)[];
  p99: (number | null)[];
}

/** End-to-end latency: from submission to the end, in ms. */
export function latencyMs(t: Task): number | null {
  if (!t.finished_at || t.status === 'cancelled') return null;
  return Date.parse(t.finished_at) - Date.parse(t.created_at);
}

export function taskSeries(tasks: Task[], w: Window, agent?: string): TaskSeries {
  const n = bucketStarts(w).length;
  const zeros = () => new Array<number>(n).fill(0);
  const submitted = zeros();
  const succeeded = zeros();
  const failed = zeros();
  const latencies: number[][] = Array.from({ length: n }, () => []);
  for (const t of tasks) {
    if (agent && t.agent !== agent) continue;
    const c = bucketOf(w, Date.parse(t.created_at));
    if (c >= 0 && c < n) submitted[c]!++;
    if (t.finished_at) {
      const f = bucketOf(w, Date.parse(t.finished_at));
      if (f >= 0 && f < n) {
        if (t.status === 'succeeded') succeeded[f]!++;
        else if (FAILED.has(t.status)) failed[f]!++;
        const l = latencyMs(t);
        if (l !== null) latencies[f]!.push(l);
      }
    }
  }
  const sorted = latencies.map((l) => l.sort((a, b) => a - b));
  return {
    submitted,
    succeeded,
    failed,
    failureRate: succeeded.map((s, i) => (s + failed[i]! > 0 ? failed[i]! / (s + failed[i]!) : null)),
    p50: sorted.map((l) => percentile(l, 50)),
    p95: sorted.map((l) => percentile(l, 95)),
    p99: sorted.map((l) => percentile(l, 99)),
  };
}

export interface AgentSummary {
  agent: string;
  ready: number;
  scheduled: number;
  running: number;
  finished: number;
  failed: number;
  failureRate: number | null;
  p50: number | null;
  p95: number | null;
}

export function agentSummaries(tasks: Task[], queues: QueueStats[], w: Window): AgentSummary[] {
  const byAgent = new Map<string, AgentSummary & { lat: number[] }>();
  const get = (agent: string) => {
    let s = byAgent.get(agent);
    if (!s) {
      s = { agent, ready: 0, scheduled: 0, running: 0, finished: 0, failed: 0, failureRate: null, p50: null, p95: null, lat: [] };
      byAgent.set(agent, s);
    }
    return s;
  };
  for (const q of queues) Object.assign(get(q.agent), { ready: q.ready, scheduled: q.scheduled, running: q.running });
  for (const t of tasks) {
    if (!t.finished_at) continue;
    const f = Date.parse(t.finished_at);
    if (f < w.from || f >= w.to) continue;
    const s = get(t.agent);
    if (t.status === 'succeeded' || FAILED.has(t.status)) s.finished++;
    if (FAILED.has(t.status)) s.failed++;
    const l = latencyMs(t);
    if (l !== null) s.lat.push(l);
  }
  return [...byAgent.values()]
    .map(({ lat, ...s }) => {
      lat.sort((a, b) => a - b);
      return { ...s, failureRate: s.finished ? s.failed / s.finished : null, p50: percentile(lat, 50), p95: percentile(lat, 95) };
    })
    .sort((a, b) => a.agent.localeCompare(b.agent));
}

export interface QueueSample {
  t: number;
  ready: number;
  running: number;
  scheduled: number;
  byAgent: Record<string, { ready: number; running: number; scheduled: number }>;
}

export function queueSample(queues: QueueStats[], t: number): QueueSample {
  const s: QueueSample = { t, ready: 0, running: 0, scheduled: 0, byAgent: {} };
  for (const q of queues) {
    s.ready += q.ready;
    s.running += q.running;
    s.scheduled += q.scheduled;
    s.byAgent[q.agent] = { ready: q.ready, running: q.running, scheduled: q.scheduled };
  }
  return s;
}

/** The last sample in each bucket (queue depth is a level, not a count). */
export function queueSeries(samples: QueueSample[], w: Window, agent?: string): { ready: (number | null)[]; running: (number | null)[]; scheduled: (number | null)[] } {
  const n = bucketStarts(w).length;
  const ready = new Array<number | null>(n).fill(null);
  const running = new Array<number | null>(n).fill(null);
  const scheduled = new Array<number | null>(n).fill(null);
  for (const s of samples) {
    const b = bucketOf(w, s.t);
    if (b < 0 || b >= n) continue;
    const v = agent ? (s.byAgent[agent] ?? { ready: 0, running: 0, scheduled: 0 }) : s;
    ready[b] = v.ready;
    running[b] = v.running;
    scheduled[b] = v.scheduled;
  }
  return { ready, running, scheduled };
}
