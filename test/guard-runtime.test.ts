/**
 * The guard's runtime on fake timers: one serial queue, an explicit state with only the
 * edges the guard takes, one owner for every timer (by name, all cleared by close), and
 * errors that are logged and counted instead of swallowed.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GuardRuntime, type GuardState } from '../src/guard/runtime.js';
import { captureLogger } from './support/guard.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function runtime() {
  const { logger, lines } = captureLogger();
  const states: GuardState[] = [];
  const failures: string[] = [];
  const rt = new GuardRuntime({ logger, onState: (s) => states.push(s), onError: (what) => failures.push(what) });
  return { rt, lines, states, failures };
}

describe('guard runtime', () => {
  it('runs queued jobs one after another, in order, even when they await', async () => {
    const { rt } = runtime();
    const order: string[] = [];
    const slow = rt.enqueue('slow', async () => {
      order.push('slow start');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      order.push('slow end');
    });
    const fast = rt.enqueue('fast', () => void order.push('fast'));
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all([slow, fast]);
    expect(order).toEqual(['slow start', 'slow end', 'fast']);
  });

  it('logs and counts a failed step, and the queue goes on', async () => {
    const { rt, lines, failures } = runtime();
    await rt.enqueue('broken', () => {
      throw new Error('boom');
    });
    let ran = false;
    await rt.enqueue('next', () => void (ran = true));
    expect(ran).toBe(true);
    expect(rt.errors).toBe(1);
    expect(failures).toEqual(['broken']);
    expect(lines().find((l) => l['msg'] === 'share guard step failed')).toMatchObject({ step: 'broken', level: 50 });
  });

  it('counts a failed background job (a scan nobody awaits) instead of dropping it', async () => {
    const { rt, failures } = runtime();
    rt.spawn('scheduled scan', Promise.reject(new Error('EIO')));
    await vi.advanceTimersByTimeAsync(0);
    expect(rt.errors).toBe(1);
    expect(failures).toEqual(['scheduled scan']);
  });

  it('takes only the guard’s state edges', () => {
    const { rt, states } = runtime();
    expect(rt.state).toBe('idle');
    expect(() => rt.setState('watching')).toThrow(/no transition from idle to watching/);
    rt.setState('starting');
    rt.setState('watching');
    rt.setState('unavailable');
    rt.setState('watching');
    rt.setState('watching'); // no-op
    expect(states).toEqual(['starting', 'watching', 'unavailable', 'watching']);
  });

  it('owns every timer by name: setting a name replaces it, repeats repeat, close clears them all', async () => {
    const { rt } = runtime();
    const fired: string[] = [];
    rt.after('flush', 100, () => fired.push('flush 1'));
    rt.after('flush', 300, () => fired.push('flush 2')); // replaces the first
    rt.every('scan', 200, () => fired.push('scan'));
    await vi.advanceTimersByTimeAsync(450);
    expect(fired).toEqual(['scan', 'flush 2', 'scan']);
    expect(rt.has('flush')).toBe(false);
    expect(rt.has('scan')).toBe(true);
    await rt.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(fired).toHaveLength(3);
    rt.after('late', 10, () => fired.push('late')); // closing: never armed
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close waits for the queue and background jobs, skips what is queued after it, and is idempotent', async () => {
    const { rt } = runtime();
    let finished = false;
    void rt.enqueue('long', async () => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      finished = true;
    });
    await vi.advanceTimersByTimeAsync(0); // the job has started (jobs not started yet when closing begins are skipped)
    const closed = rt.close();
    expect(rt.close()).toBe(closed);
    let after = false;
    const skipped = rt.enqueue('after close', () => void (after = true));
    await vi.advanceTimersByTimeAsync(500);
    await Promise.all([closed, skipped]);
    expect(finished).toBe(true);
    expect(after).toBe(false);
    expect(rt.state).toBe('closing');
  });
});
