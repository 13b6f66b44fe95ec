import { describe, expect, it } from 'vitest';
import { EMPTY_DRAFT, fieldOfProblem, formatAlertValue, formatThreshold, serverRuleErrors, specFromDraft } from './ruleForm';

describe('specFromDraft', () => {
  it('builds the spec, leaving out an empty agent and webhook', () => {
    const { spec, errors } = specFromDraft({ ...EMPTY_DRAFT, name: '  queue  ', kind: 'queue_depth', threshold: '100', windowS: '60', forS: '' });
    expect(errors).toEqual({});
    expect(spec).toEqual({ name: 'queue', kind: 'queue_depth', threshold: 100, window_s: 60, for_s: 0 });
  });

  it('sends agent and webhook when given', () => {
    const { spec } = specFromDraft({ ...EMPTY_DRAFT, name: 'x', agent: 'fail', webhookUrl: ' https://h/x ' });
    expect(spec).toMatchObject({ agent: 'fail', webhook_url: 'https://h/x', threshold: 0.05, window_s: 300 });
  });

  it('only rejects what cannot be sent; ranges are the server’s', () => {
    expect(specFromDraft({ ...EMPTY_DRAFT, threshold: 'abc', windowS: '1.5', forS: '-1' }).errors).toEqual({
      threshold: ['must be a number'],
      windowS: ['must be a whole number of seconds'],
      forS: ['must be a whole number of seconds'],
    });
    expect(specFromDraft({ ...EMPTY_DRAFT, threshold: '', windowS: '' }).spec).toBeNull();
    // An empty name or a failure rate above 1 goes to the server, which explains.
    expect(specFromDraft({ ...EMPTY_DRAFT, name: '', threshold: '5' }).spec).not.toBeNull();
  });
});

describe('server problems', () => {
  it('lands each problem on its field', () => {
    expect(fieldOfProblem('name must be 1-200 characters')).toBe('name');
    expect(fieldOfProblem('threshold must be a finite number ≥ 0')).toBe('threshold');
    expect(fieldOfProblem('a failure_rate threshold is a fraction between 0 and 1')).toBe('threshold');
    expect(fieldOfProblem('window_s must be between 1 and 604800')).toBe('windowS');
    expect(fieldOfProblem('for_s must be at most 604800')).toBe('forS');
    expect(fieldOfProblem('agent must not be empty')).toBe('agent');
    expect(fieldOfProblem('a no_worker rule needs an agent')).toBe('agent');
    expect(fieldOfProblem('webhook_url must be an http(s) URL')).toBe('webhookUrl');
    expect(fieldOfProblem('something else entirely')).toBe('form');
  });

  it('reads details.problems from a 422 and ignores other errors', () => {
    const error = {
      status: 422,
      data: { error: { code: 'validation_failed', message: 'a; b', details: { problems: ['name must be 1-200 characters', 'a no_worker rule needs an agent', 'odd'] } } },
    };
    expect(serverRuleErrors(error)).toEqual({ name: ['name must be 1-200 characters'], agent: ['a no_worker rule needs an agent'], form: ['odd'] });
    expect(serverRuleErrors({ status: 403, data: { error: { code: 'forbidden', message: 'no' } } })).toBeNull();
    expect(serverRuleErrors({ status: 'FETCH_ERROR', error: 'x' })).toBeNull();
    expect(serverRuleErrors(undefined)).toBeNull();
  });
});

describe('formatting', () => {
  it('shows thresholds and values in the unit of the kind', () => {
    expect(formatThreshold('failure_rate', 0.05)).toBe('> 5 %');
    expect(formatThreshold('queue_depth', 100)).toBe('> 100 tasks');
    expect(formatThreshold('oldest_task_age', 30)).toBe('> 30 s');
    expect(formatThreshold('no_worker', 0)).toBe('≤ 0 workers');
    expect(formatAlertValue('failure_rate', 0.123)).toBe('12.3 %');
    expect(formatAlertValue('queue_depth', 7)).toBe('7');
    expect(formatAlertValue('queue_depth', null)).toBe('—');
  });
});
