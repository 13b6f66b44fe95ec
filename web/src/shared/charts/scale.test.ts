import { describe, expect, it } from 'vitest';
import { axis } from './scale';

describe('axis', () => {
  it('uses whole-number ticks for counts', () => {
    expect(axis(4, { integer: true })).toEqual({ top: 4, ticks: [0, 1, 2, 3, 4] });
    expect(axis(0, { integer: true })).toEqual({ top: 1, ticks: [0, 1] });
    expect(axis(37, { integer: true })).toEqual({ top: 40, ticks: [0, 10, 20, 30, 40] });
  });
  it('uses round steps for measurements and ratios', () => {
    expect(axis(1)).toEqual({ top: 1, ticks: [0, 0.25, 0.5, 0.75, 1] });
    expect(axis(3500)).toEqual({ top: 4000, ticks: [0, 1000, 2000, 3000, 4000] });
  });
});
