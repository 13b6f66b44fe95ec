// Sends a signal to a task that waits for it: any JSON payload, checked before it is sent, and
// for the signal `approval` the two answers people give most, one click each.
import { useId, useState, type FormEvent } from 'react';
import { apiErrorInfo } from '@/shared/api/errors';
import { useSendSignalMutation } from '../tasksApi';

/** The signal that gets Approve and Reject buttons. */
export const APPROVAL_SIGNAL = 'approval';

export type ParsedPayload = { ok: true; value: unknown } | { ok: false; error: string };

/** The textarea's text as a JSON value, or why it is not one. */
export function parsePayload(text: string): ParsedPayload {
  if (text.trim() === '') return { ok: false, error: 'Enter the payload as JSON, e.g. {} or null.' };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: `The payload is not valid JSON: ${(e as Error).message}` };
  }
}

/** The server's refusal in words (a finished task, a payload over the limit…). */
export function signalErrorMessage(error: unknown): string {
  const info = apiErrorInfo(error);
  if (!info) return 'Something went wrong.';
  if (info.code === 'task_finished') return 'The task has already finished: it takes no more signals.';
  if (info.status === 413 || info.code === 'payload_too_large' || info.code === 'signal_too_large') return `The payload is too large for this server: ${info.message}`;
  // E.g. `invalid_state`: the task holds the most signals it has not waited for yet.
  if (info.status === 409) return `The task cannot take this signal now: ${info.message}`;
  if (info.status === 404) return `No such task, or you may not see it: ${info.message}`;
  if (info.status === 403) return `You may not send signals to this task: ${info.message}`;
  return info.message;
}

const PREVIEW_CHARS = 80;

function preview(payload: unknown): string {
  const line = JSON.stringify(payload) ?? 'null';
  return line.length > PREVIEW_CHARS ? `${line.slice(0, PREVIEW_CHARS)}…` : line;
}

export function SignalForm({ taskId, signal }: { taskId: string; signal: string }) {
  const id = useId();
  const [text, setText] = useState('{}');
  const [invalid, setInvalid] = useState<string | null>(null);
  const [send, { isLoading, error, data, originalArgs }] = useSendSignalMutation();
  // Sent and taken: a second click would only queue the same signal for a later wait.
  const done = !!data?.resumed;
  const busy = isLoading || done;

  const sendPayload = (payload: unknown) => {
    setInvalid(null);
    void send({ taskId, name: signal, payload });
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parsePayload(text);
    if (!parsed.ok) setInvalid(parsed.error);
    else sendPayload(parsed.value);
  };

  return (
    <form className="form signal-form" aria-label={`Send signal ${signal}`} onSubmit={onSubmit} noValidate>
      {signal === APPROVAL_SIGNAL && (
        <div className="actions" role="group" aria-label="Answer the approval">
          <button type="button" className="btn btn-primary" disabled={busy} onClick={() => sendPayload({ approved: true })}>
            Approve
          </button>
          <button type="button" className="btn btn-danger" disabled={busy} onClick={() => sendPayload({ approved: false })}>
            Reject
          </button>
          <span className="muted small">
            Sends <code>{'{"approved": true}'}</code> or <code>{'{"approved": false}'}</code>; or write another payload below.
          </span>
        </div>
      )}
      <div className="field">
        <label htmlFor={`${id}-payload`}>Payload (JSON)</label>
        <textarea
          id={`${id}-payload`}
          className="mono"
          rows={4}
          spellCheck={false}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            setInvalid(null);
          }}
          aria-invalid={invalid ? true : undefined}
          aria-describedby={invalid ? `${id}-payload-error` : `${id}-payload-hint`}
        />
        {invalid ? (
          <p className="field-errors" id={`${id}-payload-error`} role="alert">
            {invalid}
          </p>
        ) : (
          <p className="hint" id={`${id}-payload-hint`}>
            Any JSON value: the task gets it as the result of its wait.
          </p>
        )}
      </div>
      <div className="form-actions">
        <button type="submit" className="btn" disabled={busy}>
          {isLoading ? 'Sending…' : 'Send'}
        </button>
      </div>
      {error !== undefined && !isLoading ? (
        <div className="alert alert-error" role="alert">
          <strong>Could not send the signal:</strong> {signalErrorMessage(error)}
        </div>
      ) : data && !isLoading ? (
        <div className="alert alert-success" role="status">
          Signal <code>{data.name}</code> sent
          {originalArgs && (
            <>
              {' '}
              with <code>{preview(originalArgs.payload)}</code>
            </>
          )}
          {data.resumed ? ': the task resumes.' : '. The task does not wait for it right now: it is kept for its next wait for it.'}
        </div>
      ) : null}
    </form>
  );
}
