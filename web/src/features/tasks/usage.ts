// Token usage a task's output reports (the `llm` kind's `usage`: `prompt_tokens`,
// `completion_tokens`, and `cost` when the agent has prices).
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  cost: number | null;
}

const count = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The usage in an output, if it has one with token counts; anything else is no usage. */
export function usageOf(output: unknown): TokenUsage | null {
  if (typeof output !== 'object' || output === null || Array.isArray(output)) return null;
  const usage = (output as Record<string, unknown>).usage;
  if (typeof usage !== 'object' || usage === null) return null;
  const { prompt_tokens: prompt, completion_tokens: completion, cost } = usage as Record<string, unknown>;
  if (!count(prompt) || !count(completion)) return null;
  return { promptTokens: prompt, completionTokens: completion, cost: count(cost) ? cost : null };
}
