// JSON pointers (RFC 6901): how validation errors name the part of the input they are about.
export function escapeSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function childPointer(parent: string, segment: string | number): string {
  return `${parent}/${escapeSegment(String(segment))}`;
}

export function segments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .replace(/^\//, '')
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Is `pointer` equal to `prefix` or inside it? */
export function isWithin(pointer: string, prefix: string): boolean {
  if (prefix === '') return true;
  return pointer === prefix || pointer.startsWith(`${prefix}/`);
}

/** Sets a value at a pointer, copying along the way; `undefined` removes it. */
export function setAt(root: unknown, pointer: string, value: unknown): unknown {
  const path = segments(pointer);
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string, ...string[]];
  const restPointer = rest.length ? `/${rest.map(escapeSegment).join('/')}` : '';
  if (Array.isArray(root)) {
    const copy = [...root];
    const i = Number(head);
    const next = setAt(copy[i], restPointer, value);
    if (next === undefined && rest.length === 0) copy.splice(i, 1);
    else copy[i] = next;
    return copy;
  }
  const obj = typeof root === 'object' && root !== null ? { ...(root as Record<string, unknown>) } : {};
  const next = setAt(obj[head], restPointer, value);
  if (next === undefined) delete obj[head];
  else obj[head] = next;
  return obj;
}

export function getAt(root: unknown, pointer: string): unknown {
  let cur = root;
  for (const s of segments(pointer)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}
