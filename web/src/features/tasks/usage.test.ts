import { describe, expect, it } from 'vitest';
import { usageOf } from './usage';

describe('usageOf', () => {
  it('reads the token counts and cost of an llm output', () => {
    expect(usageOf({ content: 'hi', usage: { prompt_tokens: 10, completion_tokens: 2, cost: 0.5 } })).toEqual({ promptTokens: 10, completionTokens: 2, cost: 0.5 });
    expect(usageOf({ usage: { prompt_tokens: 10, completion_tokens: 0 } })).toEqual({ promptTokens: 10, completionTokens: 0, cost: null });
  });

  it('finds no usage in other outputs', () => {
    for (const output of [null, 'text', [1], { usage: null }, { usage: { prompt_tokens: '10', completion_tokens: 2 } }, { usage: { prompt_tokens: 10 } }, { usage: { prompt_tokens: -1, completion_tokens: 2 } }]) {
      expect(usageOf(output)).toBeNull();
    }
  });
});
