import { describe, expect, it } from 'vitest';
import { formatBytes, formatCost, formatInWords, formatWallClock, knownTimeZone } from './format';

const NOW = Date.parse('2026-12-05T15:30:00.000Z');
const at = (s: number) => new Date(NOW + s * 1000).toISOString();

describe('formatInWords', () => {
  it('says how far ahead or behind, in the largest whole unit', () => {
    expect(formatInWords(at(0.2), NOW)).toBe('now');
    expect(formatInWords(at(1), NOW)).toBe('in 1 second');
    expect(formatInWords(at(2), NOW)).toBe('in 2 seconds');
    expect(formatInWords(at(125), NOW)).toBe('in 2 minutes');
    expect(formatInWords(at(3 * 3600 + 60), NOW)).toBe('in 3 hours');
    expect(formatInWords(at(86400), NOW)).toBe('in 1 day');
    expect(formatInWords(at(-90), NOW)).toBe('2 minutes ago');
    expect(formatInWords(at(-5), NOW)).toBe('5 seconds ago');
    expect(formatInWords(null, NOW)).toBe('—');
  });
});

describe('formatWallClock', () => {
  it('reads like a schedule, on the clock of its time zone', () => {
    expect(formatWallClock('2026-12-06T02:00:00Z', 'UTC', NOW)).toBe('Sun 6 Dec 02:00');
    expect(formatWallClock('2026-12-06T01:00:00Z', 'Europe/Berlin', NOW)).toBe('Sun 6 Dec 02:00');
    expect(formatWallClock('2026-12-05T15:30:02Z', 'UTC', NOW)).toBe('Sat 5 Dec 15:30:02');
    expect(formatWallClock('2027-01-04T09:00:00Z', 'UTC', NOW)).toBe('Mon 4 Jan 2027 09:00');
  });

  it('falls back to UTC for a zone it does not know', () => {
    expect(knownTimeZone('Mars/Olympus')).toBe('UTC');
    expect(knownTimeZone('America/New_York')).toBe('America/New_York');
    expect(formatWallClock('2026-12-06T02:00:00Z', 'Mars/Olympus', NOW)).toBe('Sun 6 Dec 02:00');
  });
});

describe('formatBytes', () => {
  it('says sizes in binary units, with one decimal below 10', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(12)).toBe('12 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(65536)).toBe('64 KiB');
    expect(formatBytes(1024 * 1024 - 1)).toBe('1 MiB');
    expect(formatBytes(12.3 * 1024 * 1024)).toBe('12 MiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5 GiB');
    expect(formatBytes(2048 * 1024 ** 4)).toBe('2048 TiB');
    expect(formatBytes(-1)).toBe('—');
    expect(formatBytes(undefined)).toBe('—');
  });
});

describe('formatCost', () => {
  it('shows cents from 1 up and three significant digits below, so a fraction of a cent shows', () => {
    expect(formatCost(1234.5)).toBe('1,234.50');
    expect(formatCost(0.0123)).toBe('0.0123');
    expect(formatCost(0.000123456)).toBe('0.000123');
    expect(formatCost(0)).toBe('0');
    expect(formatCost(null)).toBe('—');
    expect(formatCost(Number.NaN)).toBe('—');
  });
});
