import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { TaskWait } from '@/shared/api/types';
import { formatDateTime } from '@/shared/lib/format';
import { describeWait, WaitDescription, waitSignal } from './WaitDescription';

const inFive = () => new Date(Date.now() + 5 * 60_000).toISOString();

describe('WaitDescription', () => {
  it('says what a task sleeps until, in local time and from now', () => {
    const until = inFive();
    const wait = { kind: 'sleep', name: 'cool-off', until } as const;
    expect(describeWait(wait)).toBe(`Sleeping until ${formatDateTime(until)}`);
    const { container } = render(<WaitDescription wait={wait} />);
    expect(container).toHaveTextContent(`Sleeping until ${formatDateTime(until)} (in 5 min)`);
    expect(container.querySelector('time')).toHaveAttribute('dateTime', until);
  });

  it('names the signal a task waits for, and its deadline if it has one', () => {
    const until = inFive();
    const withTimeout = { kind: 'signal', name: 'signal:approval', signal: 'approval', until } as const;
    expect(describeWait(withTimeout)).toBe(`Waiting for signal approval (until ${formatDateTime(until)})`);
    const { container, rerender } = render(<WaitDescription wait={withTimeout} />);
    expect(container).toHaveTextContent(`Waiting for signal approval (until ${formatDateTime(until)}, in 5 min)`);
    expect(screen.getByText('approval').tagName).toBe('CODE');

    // No timeout: no deadline. The signal's name also comes from the step name alone.
    const noSignalField = { kind: 'signal', name: 'signal:go' } as const;
    expect(waitSignal(noSignalField)).toBe('go');
    rerender(<WaitDescription wait={noSignalField} />);
    expect(container).toHaveTextContent(/^Waiting for signal go$/);
  });

  it('counts the child tasks a task waits for, and how many have finished when known', () => {
    const wait: TaskWait = { kind: 'children', name: 'join:#1', children: ['a', 'b', 'c'] };
    expect(describeWait(wait)).toBe('Waiting for 3 child tasks');
    expect(describeWait({ ...wait, children: ['a'] })).toBe('Waiting for 1 child task');
    const { container, rerender } = render(<WaitDescription wait={wait} />);
    expect(container).toHaveTextContent(/^Waiting for 3 child tasks$/);
    rerender(<WaitDescription wait={wait} finishedChildren={1} />);
    expect(container).toHaveTextContent('Waiting for 3 child tasks (1 of 3 finished)');
  });
});
