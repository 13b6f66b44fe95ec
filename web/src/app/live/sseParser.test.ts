import { describe, expect, it } from 'vitest';
import { SseParser } from './sseParser';

describe('SseParser', () => {
  it('parses messages split across chunks, with ids, comments and CRLF', () => {
    const p = new SseParser();
    expect(p.push(': keep-alive\n\nid: 4\ndata: {"a"')).toEqual([]);
    expect(p.push(':1}\r\n\r\ndata: x\ndata: y\n')).toEqual([{ event: 'message', data: '{"a":1}', id: '4' }]);
    expect(p.push('\nevent: error\ndata: {"type":"error"}\n\n')).toEqual([
      { event: 'message', data: 'x\ny', id: '4' },
      { event: 'error', data: '{"type":"error"}', id: '4' },
    ]);
  });

  it('waits for the second half of a CRLF split between chunks', () => {
    const p = new SseParser();
    expect(p.push('data: 1\r')).toEqual([]);
    expect(p.push('\n\r\n')).toEqual([{ event: 'message', data: '1', id: null }]);
  });
});
