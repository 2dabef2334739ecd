/**
 * What to do with each chunk response (cvat-facts "Implications C"):
 * 200/206 warm (204 too: an empty preview on 2.67+); 429 wait Retry-After and ask again for the same URL (the server keeps
 * building, keyed by the cache key) until a cap, then "stuck"; 502/503/504/network
 * exponential backoff with jitter; 500 at most two retries minutes apart (each retry
 * re-runs a failing build), then failed; 400/404/409 reported, not retried; 401/403
 * stop the run.
 */
export interface RetryPolicy {
  /** 429 answers tolerated for one chunk before it is reported stuck (20 × 10 s ≈ 3 min of server work). */
  maxRetryAfter: number;
  /** Used when a 429 carries no usable Retry-After. */
  defaultRetryAfterMs: number;
  /** Upper bound on one Retry-After wait, whatever the server says (CVAT sends 10 s). */
  maxRetryAfterMs: number;
  /** Upper bound on all Retry-After waits of one chunk, which hold a slot: past it the chunk is stuck. */
  maxRetryAfterTotalMs: number;
  /** Attempts that ran into the chunk deadline before the chunk is reported failed. */
  maxTimeouts: number;
  /** Attempts for 502/503/504 and network errors. */
  maxUnavailable: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Retries after HTTP 500, and the pause before each. */
  serverErrorRetries: number;
  serverErrorDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetryAfter: 20,
  defaultRetryAfterMs: 10_000,
  maxRetryAfterMs: 60_000,
  // 20 × CVAT's 10 s: a Retry-After of 99999999 must not hold a slot for hours.
  maxRetryAfterTotalMs: 300_000,
  maxTimeouts: 2,
  maxUnavailable: 10,
  backoffBaseMs: 1_000,
  backoffMaxMs: 60_000,
  serverErrorRetries: 2,
  serverErrorDelayMs: 120_000,
};

export type Verdict =
  | { action: 'warm' }
  | { action: 'retry'; delayMs: number; holdSlot: boolean; outcome: 'retry_after' | 'unavailable' | 'server_error' }
  | { action: 'give_up'; state: 'failed' | 'stuck'; outcome: 'stuck' | 'failed' | 'client_error'; reason: string }
  | { action: 'fatal'; status: 401 | 403 };

export interface AttemptCounts {
  retryAfter: number;
  /** Time already spent holding the slot on Retry-After waits (the engine adds each wait). */
  retryAfterWaitedMs?: number;
  unavailable: number;
  serverError: number;
  /** Attempts cut by the chunk deadline (a subset of `unavailable`). */
  timeouts?: number;
}

/** Parses Retry-After: delta seconds (fractions accepted) or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const seconds = Number(text.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Exponential backoff with "equal jitter": uniform in [c/2, c], c = min(max, base·2^n); the floor keeps retries from hammering a struggling server. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Decides the next step after an attempt. `status` is undefined for network errors.
 * `counts` are the attempts so far of each kind, *including* this one.
 */
export function judge(
  status: number | undefined,
  retryAfterHeader: string | string[] | undefined,
  counts: AttemptCounts,
  policy: RetryPolicy,
  random: () => number = Math.random,
): Verdict {
  // 204: a preview asked with `Prefer: handling=empty` (2.67+) that has no image (3D, audio): answered, nothing to build.
  if (status === 200 || status === 206 || status === 204) return { action: 'warm' };
  if (status === 401 || status === 403) return { action: 'fatal', status };
  if (status === 429) {
    if (counts.retryAfter > policy.maxRetryAfter) {
      return {
        action: 'give_up',
        state: 'stuck',
        outcome: 'stuck',
        reason: `still 429 after ${counts.retryAfter} attempts: the chunk build never completes (chunk workers down or overloaded, or a stale honeypot item on CVAT 2.21–2.72)`,
      };
    }
    const waited = counts.retryAfterWaitedMs ?? 0;
    if (waited >= policy.maxRetryAfterTotalMs) {
      return {
        action: 'give_up',
        state: 'stuck',
        outcome: 'stuck',
        reason: `still 429 after holding a slot ${Math.round(waited / 1000)} s on Retry-After waits: the chunk build never completes`,
      };
    }
    const wait = parseRetryAfter(retryAfterHeader) ?? policy.defaultRetryAfterMs;
    const delayMs = Math.min(wait, policy.maxRetryAfterMs, policy.maxRetryAfterTotalMs - waited);
    // Hold the slot: the server is still building this chunk on one of its workers.
    return { action: 'retry', delayMs, holdSlot: true, outcome: 'retry_after' };
  }
  if (status === undefined || status === 502 || status === 503 || status === 504) {
    if (status === undefined && (counts.timeouts ?? 0) >= policy.maxTimeouts) {
      return {
        action: 'give_up',
        state: 'failed',
        outcome: 'failed',
        reason: `the chunk request ran into its deadline (--chunk-timeout) on ${counts.timeouts ?? 0} attempts: CVAT answers too slowly or dribbles the body`,
      };
    }
    if (counts.unavailable >= policy.maxUnavailable) {
      return {
        action: 'give_up',
        state: 'failed',
        outcome: 'failed',
        reason: `${status === undefined ? 'network error' : `HTTP ${status}`} on ${counts.unavailable} attempts`,
      };
    }
    return { action: 'retry', delayMs: backoffDelay(policy, counts.unavailable - 1, random), holdSlot: false, outcome: 'unavailable' };
  }
  if (status === 500) {
    if (counts.serverError > policy.serverErrorRetries) {
      return {
        action: 'give_up',
        state: 'failed',
        outcome: 'failed',
        reason: `HTTP 500 on ${counts.serverError} attempts: the chunk build fails on the server (missing or unreadable source file, chunk over 500 MiB, decode error); run \`cvat-warden check\` for share tasks`,
      };
    }
    return { action: 'retry', delayMs: policy.serverErrorDelayMs, holdSlot: false, outcome: 'server_error' };
  }
  const reasons: Record<number, string> = {
    400: 'HTTP 400: CVAT rejected the chunk address (the task changed since it was listed?)',
    404: 'HTTP 404: the job or task no longer exists, or has no media',
    409: "HTTP 409: the task's cloud storage is no longer attached",
  };
  return { action: 'give_up', state: 'failed', outcome: 'client_error', reason: reasons[status] ?? `unexpected HTTP ${status}` };
}
