// Axis helpers: round ("nice") steps, whole numbers for counts.
export function niceStep(raw: number, integer = false): number {
  if (!Number.isFinite(raw) || raw <= 0) return integer ? 1 : 0.25;
  const exp = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / exp;
  const choices = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const nice = (choices.find((c) => f <= c) ?? 10) * exp;
  return integer ? Math.max(1, Math.round(nice)) : nice;
}

/** The top of the axis and its ticks, from 0, for values up to `max`. */
export function axis(max: number, { count = 4, integer = false }: { count?: number; integer?: boolean } = {}): { top: number; ticks: number[] } {
  const step = niceStep(max / count, integer);
  const top = Math.max(step, Math.ceil(max / step - 1e-9) * step);
  const ticks: number[] = [];
  for (let i = 0; i * step <= top + step / 1e6; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { top, ticks };
}
