import { describe, expect, it } from 'vitest';
import { schedule } from '@/test/schedules';
import { EMPTY_DRAFT, draftOf, fieldOfProblem, serverScheduleErrors, specFromDraft, specOf, timeZoneChoices } from './scheduleForm';

describe('specFromDraft', () => {
  it('builds the body, tidying the cron and defaulting the time zone', () => {
    const { spec, errors } = specFromDraft({ ...EMPTY_DRAFT, name: ' nightly ', agent: 'echo', input: { a: 1 }, cron: '  0  2 * *   * ', timezone: ' ' }, true);
    expect(errors).toEqual({});
    expect(spec).toEqual({ name: 'nightly', agent: 'echo', input: { a: 1 }, cron: '0 2 * * *', timezone: 'UTC', overlap: 'allow', catchup: 'none', paused: false });
  });

  it('leaves the name out when editing (it is in the path)', () => {
    const { spec } = specFromDraft(draftOf(schedule('nightly')), false);
    expect(spec).not.toHaveProperty('name');
    expect(spec).toEqual(specOf(schedule('nightly')));
  });

  it('only rejects what needs no server', () => {
    expect(specFromDraft({ ...EMPTY_DRAFT, name: 'Bad Name', input: undefined }, true).errors).toEqual({
      name: 'use 1–64 of a-z 0-9 _ - ., starting with a letter or digit',
      agent: 'choose an agent',
      cron: 'is required',
      input: 'is required (use {} for none)',
    });
    // A cron the server will refuse still goes to the server, which explains.
    expect(specFromDraft({ ...EMPTY_DRAFT, name: 'x', agent: 'echo', cron: 'every day' }, true).spec).not.toBeNull();
  });
});

describe('server refusals', () => {
  const err = (status: number, code: string, message: string) => ({ status, data: { error: { code, message } } });

  it('lands each on its field', () => {
    expect(fieldOfProblem('invalid cron expression: expected 5 or 6 fields')).toBe('cron');
    expect(fieldOfProblem('unknown time zone Mars/Olympus')).toBe('timezone');
    expect(fieldOfProblem('timezone must be an IANA name')).toBe('timezone');
    expect(fieldOfProblem('name must be 1-64 of a-z 0-9 _ - .')).toBe('name');
    expect(fieldOfProblem('something else')).toBe('form');
    expect(serverScheduleErrors(err(422, 'invalid_schedule', 'unknown time zone X'))).toEqual({ timezone: 'unknown time zone X' });
    expect(serverScheduleErrors(err(409, 'conflict', 'schedule nightly exists'))).toEqual({ name: 'schedule nightly exists' });
    expect(serverScheduleErrors(err(404, 'not_found', 'no agent named ghost'))).toEqual({ agent: 'no agent named ghost' });
  });

  it('leaves other failures to an error box', () => {
    expect(serverScheduleErrors(err(403, 'forbidden', 'no'))).toBeNull();
    expect(serverScheduleErrors(err(500, 'internal', 'boom'))).toBeNull();
    expect(serverScheduleErrors({ status: 'FETCH_ERROR', error: 'x' })).toBeNull();
    expect(serverScheduleErrors(undefined)).toBeNull();
  });
});

describe('timeZoneChoices', () => {
  it('puts the browser’s zone first when it is not a common one', () => {
    expect(timeZoneChoices('UTC')[0]).toBe('UTC');
    expect(timeZoneChoices('Asia/Kathmandu').slice(0, 2)).toEqual(['Asia/Kathmandu', 'UTC']);
  });
});
