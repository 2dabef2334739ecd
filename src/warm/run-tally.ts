/**
 * One warm run's bookkeeping: its progress counters, the failures it lists (capped) and
 * the warning logged per failed chunk. The engine decides; this only counts and reports.
 */
import type { Logger } from '../log.js';
import type { WarmRequest } from '../plan/types.js';
import type { CloudCause } from './cloud-errors.js';

export interface WarmProgress {
  total: number;
  fresh: number;
  warm: number;
  failed: number;
  stuck: number;
  inFlight: number;
  bytes: number;
}

export interface ChunkFailure {
  taskId: number;
  jobId: number;
  kind: WarmRequest['kind'];
  quality: string;
  slot: number;
  state: 'failed' | 'stuck';
  reason: string;
  /** A cloud-storage cause CVAT named (bucket forbidden or gone, object missing, storage detached). */
  cloud?: CloudCause;
}

/** Failures listed one by one in a run's result; the rest are only counted. */
export const MAX_LISTED_FAILURES = 1000;

export interface FinishDetails {
  reason?: string | undefined;
  cloud?: CloudCause | undefined;
  /** False for a request skipped behind a cloud block: counted and summarised per storage, not listed. @default true */
  listed?: boolean;
}

export class RunTally {
  readonly progress: WarmProgress;
  readonly failures: ChunkFailure[] = [];
  /** Failures beyond the ones listed in `failures`. */
  moreFailures = 0;
  readonly #logger: Logger;
  readonly #onReport: (progress: WarmProgress) => void;

  constructor(total: number, logger: Logger, onReport: (progress: WarmProgress) => void) {
    this.progress = { total, fresh: 0, warm: 0, failed: 0, stuck: 0, inFlight: 0, bytes: 0 };
    this.#logger = logger;
    this.#onReport = onReport;
  }

  report(): void {
    this.#onReport(this.progress);
  }

  /** Counts a request's end; a failure is listed (up to the cap) and logged unless `listed` is false. */
  finish(request: WarmRequest, state: 'warm' | 'failed' | 'stuck', details: FinishDetails = {}): void {
    this.progress[state]++;
    if (state !== 'warm' && details.listed !== false) this.#listFailure(request, state, details);
    this.report();
  }

  #listFailure(request: WarmRequest, state: 'failed' | 'stuck', { reason, cloud }: FinishDetails): void {
    if (this.failures.length < MAX_LISTED_FAILURES) {
      this.failures.push({
        taskId: request.taskId,
        jobId: request.jobId,
        kind: request.kind,
        quality: request.quality,
        slot: request.slot,
        state,
        reason: reason ?? '',
        ...(cloud ? { cloud } : {}),
      });
    } else this.moreFailures++;
    this.#logger.warn(
      { taskId: request.taskId, jobId: request.jobId, kind: request.kind, slot: request.slot, quality: request.quality, state, reason },
      `chunk ${state}`,
    );
  }
}
