/**
 * What the service asks of the guard's live index, answered without a share scan: why a
 * chunk build of a guarded task failed (worker-mount.ts), and what reads some share paths
 * (`cvat-warden impact` asks the running service through GET /impact).
 */
import { impactAnswer, type ImpactAnswer } from '../core/impact.js';
import type { LastWarmedAt } from '../core/mapping.js';
import type { ShareIndex } from '../core/share-index.js';
import { explainChunkFailure } from './worker-mount.js';

export class IndexQueries {
  readonly #index: ShareIndex;
  readonly #absolutePath: (rel: string) => string;
  readonly #lastWarmedAt: LastWarmedAt | undefined;

  constructor(index: ShareIndex, absolutePath: (rel: string) => string, lastWarmedAt: LastWarmedAt | undefined) {
    this.#index = index;
    this.#absolutePath = absolutePath;
    this.#lastWarmedAt = lastWarmedAt;
  }

  /**
   * Why a chunk build of a guarded task failed with CVAT's 500, when the share here can
   * tell: the worker's missing mount when every source file is readable here, or the
   * file that is missing. Undefined when the task is not guarded.
   */
  explainChunkFailure(failure: { taskId: number; jobId: number; chunk: number | undefined }): Promise<string | undefined> {
    return explainChunkFailure(this.#index, this.#absolutePath, failure);
  }

  /** The tasks, jobs and chunks that read the files under `selectors` (share-relative), only `taskIds` when given. */
  impact(selectors: readonly string[], taskIds?: ReadonlySet<number>): ImpactAnswer {
    return impactAnswer(this.#index, selectors, this.#lastWarmedAt, taskIds);
  }
}
