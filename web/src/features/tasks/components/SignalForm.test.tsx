import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { errorBody, server, useMockServer } from '@/test/msw';
import { renderWithStore } from '@/test/utils';
import { SignalForm } from './SignalForm';

useMockServer();

const ID = '01900000-0000-7000-8000-0000000000dd';

/** Answers signals to ID with `answer` (202 by default) and records what was sent. */
function signalServer(name: string, answer: () => Response = () => HttpResponse.json({ task_id: ID, name, resumed: true }, { status: 202 })) {
  const sent: { body: unknown; contentType: string | null }[] = [];
  server.use(
    http.post(`*/api/v1/tasks/${ID}/signals/${name}`, async ({ request }) => {
      sent.push({ body: await request.json(), contentType: request.headers.get('content-type') });
      return answer();
    }),
  );
  return sent;
}

describe('SignalForm', () => {
  it('sends only valid JSON, any value, as the request body', async () => {
    const sent = signalServer('review');
    const user = userEvent.setup();
    renderWithStore(<SignalForm taskId={ID} signal="review" />);
    // Shortcuts are for `approval` only.
    expect(screen.queryByRole('button', { name: 'Approve' })).toBeNull();
    const payload = screen.getByLabelText('Payload (JSON)');
    expect(payload).toHaveValue('{}');

    await user.clear(payload);
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(screen.getByRole('alert')).toHaveTextContent('Enter the payload as JSON, e.g. {} or null.');
    expect(payload).toHaveAttribute('aria-invalid', 'true');
    expect(payload).toHaveAccessibleDescription(/Enter the payload as JSON/);

    await user.click(payload);
    await user.paste('{"ok": tru');
    expect(payload).not.toHaveAttribute('aria-invalid');
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(screen.getByRole('alert')).toHaveTextContent(/^The payload is not valid JSON: /);
    expect(sent).toEqual([]);

    // A bare string is JSON too, and goes as JSON (not as text).
    await user.clear(payload);
    await user.paste('"looks good"');
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(await screen.findByRole('status')).toHaveTextContent('Signal review sent with "looks good": the task resumes.');
    expect(sent).toEqual([{ body: 'looks good', contentType: 'application/json' }]);
    // Taken: sending again would only queue it for a later wait.
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled();
  });

  it('answers an approval with one click: Reject, Approve', async () => {
    let resumed = false;
    const sent = signalServer('approval', () => HttpResponse.json({ task_id: ID, name: 'approval', resumed }, { status: 202 }));
    const user = userEvent.setup();
    renderWithStore(<SignalForm taskId={ID} signal="approval" />);

    await user.click(screen.getByRole('button', { name: 'Reject' }));
    // Not resumed (the task was not waiting any more): kept, and the buttons stay.
    expect(await screen.findByRole('status')).toHaveTextContent('Signal approval sent with {"approved":false}. The task does not wait for it right now');
    expect(sent.map((s) => s.body)).toEqual([{ approved: false }]);

    resumed = true;
    await user.click(screen.getByRole('button', { name: 'Approve' }));
    expect(await screen.findByText(/the task resumes/)).toHaveTextContent('Signal approval sent with {"approved":true}: the task resumes.');
    expect(sent.map((s) => s.body)).toEqual([{ approved: false }, { approved: true }]);
    for (const name of ['Approve', 'Reject', 'Send']) expect(screen.getByRole('button', { name })).toBeDisabled();
  });

  it("explains the server's refusals: a finished task, a payload over the limit, too many signals kept", async () => {
    let answer = () => HttpResponse.json(errorBody('task_finished', 'task 01900000 has finished'), { status: 409 });
    signalServer('approval', () => answer());
    const user = userEvent.setup();
    renderWithStore(<SignalForm taskId={ID} signal="approval" />);

    await user.click(screen.getByRole('button', { name: 'Approve' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not send the signal: The task has already finished: it takes no more signals.');

    answer = () => HttpResponse.json(errorBody('payload_too_large', "the signal's payload is 70000 bytes of JSON; the most is 65536"), { status: 413 });
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(await screen.findByText(/too large/)).toHaveTextContent(
      "Could not send the signal: The payload is too large for this server: the signal's payload is 70000 bytes of JSON; the most is 65536",
    );

    answer = () => HttpResponse.json(errorBody('invalid_state', 'the task holds 100 signals it has not waited for'), { status: 409 });
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(await screen.findByText(/cannot take/)).toHaveTextContent(
      'Could not send the signal: The task cannot take this signal now: the task holds 100 signals it has not waited for',
    );
    // Refused: the buttons stay usable.
    expect(screen.getByRole('button', { name: 'Approve' })).toBeEnabled();
  });
});
