import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, backoffDelay, judge, parseRetryAfter } from '../src/warm/policy.js';

const counts = (retryAfter = 0, unavailable = 0, serverError = 0) => ({ retryAfter, unavailable, serverError });

describe('retry policy (cvat-facts, Implications C)', () => {
  it('treats 200 and 206 as warm', () => {
    expect(judge(200, undefined, counts(), DEFAULT_RETRY_POLICY).action).toBe('warm');
    expect(judge(206, undefined, counts(), DEFAULT_RETRY_POLICY).action).toBe('warm');
  });

  it('waits Retry-After on 429 while holding the slot, then reports stuck past the cap', () => {
    expect(judge(429, '10', counts(1), DEFAULT_RETRY_POLICY)).toEqual({ action: 'retry', delayMs: 10_000, holdSlot: true, outcome: 'retry_after' });
    expect(judge(429, undefined, counts(1), DEFAULT_RETRY_POLICY)).toMatchObject({ delayMs: DEFAULT_RETRY_POLICY.defaultRetryAfterMs });
    expect(judge(429, '99999', counts(1), DEFAULT_RETRY_POLICY)).toMatchObject({ delayMs: DEFAULT_RETRY_POLICY.maxRetryAfterMs });
    expect(judge(429, '10', counts(DEFAULT_RETRY_POLICY.maxRetryAfter + 1), DEFAULT_RETRY_POLICY)).toMatchObject({ action: 'give_up', state: 'stuck' });
  });

  it('backs off exponentially with jitter on 502/503/504 and network errors, capped', () => {
    for (const status of [502, 503, 504, undefined]) {
      const first = judge(status, undefined, counts(0, 1), DEFAULT_RETRY_POLICY, () => 0);
      expect(first).toMatchObject({ action: 'retry', holdSlot: false, outcome: 'unavailable' });
      expect(judge(status, undefined, counts(0, DEFAULT_RETRY_POLICY.maxUnavailable), DEFAULT_RETRY_POLICY)).toMatchObject({
        action: 'give_up',
        state: 'failed',
      });
    }
    const delays = [0, 1, 2, 3, 10].map((n) => backoffDelay(DEFAULT_RETRY_POLICY, n, () => 1));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 60_000]);
    expect(backoffDelay(DEFAULT_RETRY_POLICY, 3, () => 0)).toBe(4000);
  });

  it('retries 500 at most twice, minutes apart, then fails with a reason that points at the share', () => {
    expect(judge(500, undefined, counts(0, 0, 1), DEFAULT_RETRY_POLICY)).toMatchObject({ action: 'retry', delayMs: 120_000, holdSlot: false });
    expect(judge(500, undefined, counts(0, 0, 2), DEFAULT_RETRY_POLICY)).toMatchObject({ action: 'retry' });
    const verdict = judge(500, undefined, counts(0, 0, 3), DEFAULT_RETRY_POLICY);
    expect(verdict).toMatchObject({ action: 'give_up', state: 'failed' });
    expect(verdict.action === 'give_up' && verdict.reason).toMatch(/cvat-warden check/);
  });

  it('reports 400/404/409 without retrying and stops on 401/403', () => {
    for (const status of [400, 404, 409])
      expect(judge(status, undefined, counts(), DEFAULT_RETRY_POLICY)).toMatchObject({ action: 'give_up', outcome: 'client_error' });
    expect(judge(401, undefined, counts(), DEFAULT_RETRY_POLICY)).toEqual({ action: 'fatal', status: 401 });
    expect(judge(403, undefined, counts(), DEFAULT_RETRY_POLICY)).toEqual({ action: 'fatal', status: 403 });
  });

  it('parses Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('10')).toBe(10_000);
    expect(parseRetryAfter('0.05')).toBe(50);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
