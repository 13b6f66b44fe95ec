// Formatting of times, durations and ids for people.
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? String(Number(s.toFixed(1))) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  const rs = Math.round(s % 60);
  if (m < 60) return rs ? `${m} min ${rs} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

export function durationBetween(from: string | null | undefined, to: string | null | undefined, now = Date.now()): number | null {
  if (!from) return null;
  const end = to ? Date.parse(to) : now;
  return end - Date.parse(from);
}

export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = Math.round((now - t) / 1000);
  const future = d < 0;
  const a = Math.abs(d);
  let text: string;
  // Within a few seconds either way (clocks differ a little): now.
  if (a < 5) return 'just now';
  if (a < 60) text = `${a} s`;
  else if (a < 3600) text = `${Math.floor(a / 60)} min`;
  else if (a < 86400) text = `${Math.floor(a / 3600)} h`;
  else text = `${Math.floor(a / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function formatTime(t: number): string {
  return new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** The distinctive end of a UUIDv7 (its start is a timestamp shared by neighbours). */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(-8) : id;
}

export function formatNumber(n: number, digits = 0): string {
  return n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/**
 * An amount of money in no particular currency (an LLM agent's prices are in whatever the
 * operator counts in): cents for amounts from 1 up, three significant digits below, so a
 * fraction of a cent still shows.
 */
export function formatCost(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n === 0) return '0';
  if (Math.abs(n) >= 1) return n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return n.toLocaleString(undefined, { maximumSignificantDigits: 3 });
}

export function formatPercent(ratio: number | null): string {
  if (ratio === null || !Number.isFinite(ratio)) return '—';
  return `${(ratio * 100).toFixed(ratio < 0.1 && ratio > 0 ? 1 : 0)} %`;
}

/** `<input type="datetime-local">` value (local time) ⇄ ISO timestamp. */
export function localInputToIso(value: string): string | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function isoToLocalInput(iso: string | undefined | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const UNITS: [number, string][] = [
  [86400, 'day'],
  [3600, 'hour'],
  [60, 'minute'],
  [1, 'second'],
];

/** How far a time is from now, in words: "in 2 minutes", "5 seconds ago", "now". */
export function formatInWords(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const seconds = (t - now) / 1000;
  const a = Math.abs(seconds);
  if (a < 0.5) return 'now';
  const [size, unit] = UNITS.find(([size]) => a >= size) ?? [1, 'second'];
  const n = Math.max(1, Math.round(a / size));
  const text = `${n} ${unit}${n === 1 ? '' : 's'}`;
  return seconds > 0 ? `in ${text}` : `${text} ago`;
}

/** A time zone Intl knows, else UTC (a name still being typed, or one the browser lacks). */
export function knownTimeZone(timeZone: string | null | undefined): string {
  if (!timeZone) return 'UTC';
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
    return timeZone;
  } catch {
    return 'UTC';
  }
}

/**
 * A wall-clock time in a time zone, the way a schedule reads: "Sat 6 Dec 02:00", with seconds
 * when they are not :00 and the year when it is not this one.
 */
export function formatWallClock(iso: string, timeZone = 'UTC', now = Date.now()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const zone = knownTimeZone(timeZone);
  const parts = (date: Date) =>
    Object.fromEntries(
      new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
        .formatToParts(date)
        .map((p) => [p.type, p.value]),
    ) as Record<string, string>;
  const p = parts(d);
  const year = p.year !== parts(new Date(now)).year ? ` ${p.year}` : '';
  const seconds = p.second && p.second !== '00' ? `:${p.second}` : '';
  return `${p.weekday} ${p.day} ${p.month}${year} ${p.hour}:${p.minute}${seconds}`;
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** A size for people, in binary units: "512 B", "1.5 KiB", "12 MiB". */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${Math.round(n)} B`;
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  let shown = v < 10 ? Number(v.toFixed(1)) : Math.round(v);
  // 1023.7 KiB rounds to 1024 KiB: say 1 MiB instead.
  if (shown >= 1024 && i < BYTE_UNITS.length - 1) {
    shown = 1;
    i++;
  }
  return `${shown} ${BYTE_UNITS[i]}`;
}
