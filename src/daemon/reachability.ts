/**
 * Whether CVAT answers, as the service's own requests see it: every request the client
 * sends reports an HTTP answer (up) or none (down: refused, reset, timed out). Readiness
 * follows it with a grace: one failed request does not take the pod out of its Service,
 * an outage longer than the grace does, and the first answer afterwards brings it back.
 * No timer of its own — the state is read when /readyz or /status asks.
 */

export interface ReachabilitySnapshot {
  /** null until the first request has ended. */
  reachable: boolean | null;
  lastSuccessAt: string | null;
  lastErrorAt: string | null;
  lastError: string | null;
  /** Start of the current outage (first failure since the last answer); null while CVAT answers. */
  downSince: string | null;
}

export interface ReadinessVerdict {
  ok: boolean;
  detail: string;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export class CvatReachability {
  readonly graceMs: number;
  private readonly now: () => number;
  private lastSuccessAt: number | undefined;
  private lastErrorAt: number | undefined;
  private lastError: string | undefined;
  private downSince: number | undefined;

  constructor(options: { graceMs: number; now?: () => number }) {
    this.graceMs = options.graceMs;
    this.now = options.now ?? Date.now;
  }

  /** Called by the CVAT client after each request (an HTTP answer of any status counts as up). */
  record(up: boolean, error?: string): void {
    const at = this.now();
    if (up) {
      this.lastSuccessAt = at;
      this.downSince = undefined;
      return;
    }
    this.lastErrorAt = at;
    this.lastError = error ?? 'no answer';
    this.downSince ??= at;
  }

  /** Down for longer than the grace. Before any request has ended it is not "down": the connect loop reports that. */
  verdict(): ReadinessVerdict {
    if (this.downSince === undefined) return { ok: true, detail: this.lastSuccessAt === undefined ? 'no request yet' : 'answering' };
    const downMs = this.now() - this.downSince;
    const seconds = Math.round(downMs / 1000);
    if (downMs < this.graceMs)
      return { ok: true, detail: `no answer for ${seconds} s (within the ${Math.round(this.graceMs / 1000)} s grace): ${this.lastError}` };
    return { ok: false, detail: `unreachable for ${seconds} s: ${this.lastError}` };
  }

  snapshot(): ReachabilitySnapshot {
    return {
      reachable: this.downSince !== undefined ? false : this.lastSuccessAt !== undefined ? true : null,
      lastSuccessAt: iso(this.lastSuccessAt),
      lastErrorAt: iso(this.lastErrorAt),
      lastError: this.lastError ?? null,
      downSince: iso(this.downSince),
    };
  }
}
