/**
 * Cloud storage as a source of expected files (see ../source.ts): the expected files are the
 * objects cloud-storage tasks read (cloud-tasks.ts); their presence is observed by CVAT's paged
 * listing, `GET /api/cloudstorages/{id}/content-v2` (src/cloud/listing.ts, CVAT 2.73
 * views.py `content_v2`), one directory level per call and each page a billed LIST — never by
 * events. So `observe`, `setAvailable` and `afterScan` have nothing to do, and a "scan" is a
 * listing round:
 *  - each storage's status first (`…/status`: content-v2 answers 500 on a forbidden bucket); a
 *    storage not AVAILABLE is not listed and the verdicts on its objects stand;
 *  - then directories, least recently listed first, each once per round however many tasks use
 *    it, while the LIST budget allows; the rest wait for a later round (`deferred`);
 *  - a complete listing feeds the guard's tracker for every slot of that directory: present, or
 *    absent (→ the same `deleted` problem, alert and persistence as a missing share file).
 * What the listing cannot tell: content-v2 gives no size, ETag or mtime, so every present object
 * is observed with one constant stat and "modified" never fires (CVAT itself only logs an md5
 * mismatch when it builds a chunk from a changed object).
 */
import type { CvatClient } from '../../cvat/client.js';
import { CLOUD_STORAGE_STATUSES, type CloudStorageStatus } from '../../domain.js';
import { redactSecrets } from '../../secrets.js';
import { listDirectory, storageStatus } from '../../cloud/listing.js';
import type { ListBudget } from '../../cloud/budget.js';
import type { DirRecord } from '../core/share-index.js';
import type { GuardSource, ScanOptions, SourceHost } from '../source.js';
import type { CloudStorageAlert, FileStat, GuardTask } from '../types.js';
import { applyCloudTasks, listingOf } from './cloud-tasks.js';

/** How a present object is observed: the listing tells presence only, so every baseline is this. */
export const LISTED: Readonly<FileStat> = Object.freeze({ size: 0, mtimeMs: 0, ino: 0, dev: 0 });

export interface CloudSourceOptions {
  client: CvatClient;
  budget: Pick<ListBudget, 'take'>;
  /** The round period (the guard's reconcile interval for this source). */
  intervalMs: number;
}

export interface StorageReport {
  storageId: number;
  status: CloudStorageStatus;
  problem?: string;
  taskIds: number[];
}

/** One listing round. */
export interface CloudRound {
  storages: StorageReport[];
  /** content-v2 calls made. */
  calls: number;
  directoriesListed: number;
  /** Directories left for a later round by the budget (or unlisted after a failed page). */
  directoriesDeferred: number;
  /** Listing failures (not budget): directory and message. */
  listingProblems: Array<{ storageId: number; dir: string; problem: string }>;
  /** Expected objects observed (present or absent) this round. */
  observed: number;
  missing: number;
}

export interface CloudSourceStatus {
  storages: StorageReport[];
  directories: number;
  directoriesNeverListed: number;
  lastRound: (Omit<CloudRound, 'storages'> & { at: number }) | null;
}

interface Listing {
  lastListedAt: number;
  /** Names seen by the last complete listing. */
  present: Set<string>;
}

export class CloudSource implements GuardSource<CloudSourceStatus> {
  readonly #o: CloudSourceOptions;
  readonly #host: SourceHost;
  readonly #minObjects = new Map<number, number>();
  /** Index directory → its last complete listing. */
  readonly #listings = new Map<string, Listing>();
  readonly #storages = new Map<number, StorageReport>();
  #lastRound: CloudSourceStatus['lastRound'] = null;
  #closed = false;
  readonly liveSource = 'scan' as const;

  constructor(options: CloudSourceOptions, host: SourceHost) {
    this.#o = options;
    this.#host = host;
  }

  applyTasks(remove: readonly number[], upsert: readonly GuardTask[], skipped: Map<number, string>): Promise<{ created: number[]; newDirs: Set<string> }> {
    const { index, tracker } = this.#host;
    const { created, emptied } = applyCloudTasks({ index, tracker, skipped, minObjects: this.#minObjects }, remove, upsert);
    for (const dir of emptied) if (index.dirId(dir.rel) === undefined) this.#listings.delete(dir.rel);
    const newDirs = new Set<string>();
    for (const f of created) newDirs.add(index.dirs[index.dirOf[f]!]!.rel);
    return Promise.resolve({ created, newDirs });
  }

  /** Nothing to detect: where the objects are is CVAT's business. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  /** Storages are healthy or not one by one (the round asks each); the source as a whole is. */
  healthy(): Promise<boolean> {
    return Promise.resolve(!this.#closed);
  }

  /** A bucket sends no events: presence is only ever learned by a round. */
  observe(): Promise<void> {
    return Promise.resolve();
  }

  /** Availability is per storage, decided in each round. */
  setAvailable(): Promise<void> {
    return Promise.resolve();
  }

  afterScan(): Promise<void> {
    return Promise.resolve();
  }

  ready(): void {
    // Rounds are scheduled by the guard's owner (CloudComponent in `run`, once in `check`).
  }

  /** The last complete listing's verdict; undefined when absent or never listed. */
  stat(f: number): Promise<FileStat | undefined> {
    const { index } = this.#host;
    if (!index.isLive(f)) return Promise.resolve(undefined);
    const dir = index.dirs[index.dirOf[f]!]!;
    const listing = this.#listings.get(dir.rel);
    return Promise.resolve(listing && this.#present(f, index.nameOf(f), listing.present) ? { ...LISTED } : undefined);
  }

  defaultScanIntervalMs(): number {
    return this.#o.intervalMs;
  }

  /** One listing round over the directories of `ids` (every directory when omitted). */
  async scan(ids: Int32Array | undefined, options: ScanOptions) {
    const round = await this.round(ids, options);
    return {
      filesChecked: round.observed,
      present: round.observed - round.missing,
      missing: round.missing,
      modified: 0,
      errors: round.listingProblems.length,
      alerts: 0,
    };
  }

  async round(ids: Int32Array | undefined, { source, signal }: ScanOptions): Promise<CloudRound> {
    const dirs = this.#dirsToList(ids);
    const storages = this.#storagesOf(dirs);
    await this.#askStatuses(storages, signal);
    const round: CloudRound = {
      storages: [...storages.values()],
      calls: 0,
      directoriesListed: 0,
      directoriesDeferred: 0,
      listingProblems: [],
      observed: 0,
      missing: 0,
    };
    let budgetSpent = false;
    for (const dir of dirs) {
      const { storageId, prefix } = listingOf(dir.rel);
      if (storages.get(storageId)?.status !== 'AVAILABLE') continue;
      if (budgetSpent || this.#closed || signal?.aborted) {
        round.directoriesDeferred++;
        continue;
      }
      const listing = await listDirectory(this.#o.client, storageId, prefix, {
        take: () => this.#o.budget.take(),
        onCall: () => {
          round.calls++;
          this.#host.metrics.cloudListCalls.inc();
        },
        ...(signal ? { signal } : {}),
      });
      if (!listing.complete) {
        round.directoriesDeferred++;
        if (listing.problem) round.listingProblems.push({ storageId, dir: prefix, problem: redactSecrets(listing.problem) });
        else budgetSpent = true;
        continue;
      }
      round.directoriesListed++;
      await this.#host.enqueue(() => {
        this.#observeDir(dir.rel, listing.files, source, round);
        return Promise.resolve();
      });
    }
    this.#host.metrics.cloudDirectoriesDeferred.set(round.directoriesDeferred);
    this.#host.metrics.cloudLastRoundTimestamp.set(this.#host.clock.wall() / 1000);
    const { storages: _storages, ...rest } = round;
    this.#lastRound = { ...rest, at: this.#host.clock.wall() };
    return round;
  }

  /** Live directories to list: those of `ids` never listed yet, or all, least recently listed first. */
  #dirsToList(ids: Int32Array | undefined): DirRecord[] {
    const { index } = this.#host;
    if (ids) {
      const seen = new Map<number, DirRecord>();
      for (const f of ids) if (index.isLive(f)) seen.set(index.dirOf[f]!, index.dirs[index.dirOf[f]!]!);
      return [...seen.values()].filter((d) => !this.#listings.has(d.rel));
    }
    const at = (d: DirRecord) => this.#listings.get(d.rel)?.lastListedAt ?? -Infinity;
    return [...index.liveDirs()].sort((a, b) => at(a) - at(b));
  }

  #storagesOf(dirs: readonly DirRecord[]): Map<number, StorageReport> {
    const { index } = this.#host;
    const wanted = new Set(dirs.map((d) => listingOf(d.rel).storageId));
    const reports = new Map<number, StorageReport>();
    for (const [taskId, task] of index.tasks) {
      const first = task.fileIds[0];
      if (first === undefined || !index.isLive(first)) continue;
      const storageId = listingOf(index.dirs[index.dirOf[first]!]!.rel).storageId;
      if (!wanted.has(storageId)) continue;
      const report = reports.get(storageId) ?? { storageId, status: 'unknown' as CloudStorageStatus, taskIds: [] };
      report.taskIds.push(taskId);
      reports.set(storageId, report);
    }
    return reports;
  }

  /** One status call per storage and round; a change of status is an event (and a log line), not every round. */
  async #askStatuses(storages: Map<number, StorageReport>, signal: AbortSignal | undefined): Promise<void> {
    const { metrics, events, clock } = this.#host;
    for (const report of storages.values()) {
      if (this.#closed || signal?.aborted) break;
      const answer = await storageStatus(this.#o.client, report.storageId, signal);
      report.status = answer.status;
      if (answer.problem) report.problem = redactSecrets(answer.problem);
      for (const status of CLOUD_STORAGE_STATUSES)
        metrics.cloudStorageStatus.set({ storage_id: String(report.storageId), status }, status === answer.status ? 1 : 0);
      const before = this.#storages.get(report.storageId)?.status;
      this.#storages.set(report.storageId, report);
      const usable = answer.status === 'AVAILABLE';
      if (before === answer.status || (before === undefined && usable)) continue;
      const alert: CloudStorageAlert = {
        kind: usable ? 'storage_available' : 'storage_unavailable',
        storageId: report.storageId,
        status: answer.status,
        at: clock.wall(),
        taskIds: report.taskIds.slice(0, 100),
        ...(report.problem !== undefined ? { reason: report.problem } : {}),
      };
      events.emit('storage', alert);
    }
  }

  /** Feeds the tracker what one complete listing says about every expected object of that directory. */
  #observeDir(rel: string, files: Set<string>, source: ScanOptions['source'], round: CloudRound): void {
    const { index, tracker } = this.#host;
    this.#listings.set(rel, { lastListedAt: this.#host.clock.monotonic(), present: files });
    const id = index.dirId(rel);
    if (id === undefined) return; // its tasks left while it was listed
    for (const f of index.dirs[id]!.files.values()) {
      const name = index.nameOf(f);
      const present = this.#present(f, name, files);
      round.observed++;
      if (!present) round.missing++;
      tracker.observe(f, { stat: present ? { ...LISTED } : null, source });
    }
  }

  /** An object is there by name; a context-image directory when it holds at least the objects its frames need. */
  #present(f: number, name: string, files: Set<string>): boolean {
    const min = this.#minObjects.get(f);
    return min !== undefined && name === '' ? files.size >= min : files.has(name);
  }

  status(): CloudSourceStatus {
    const dirs = [...this.#host.index.liveDirs()];
    return {
      storages: [...this.#storages.values()].map((s) => ({ ...s, taskIds: s.taskIds.slice(0, 100) })),
      directories: dirs.length,
      directoriesNeverListed: dirs.filter((d) => !this.#listings.has(d.rel)).length,
      lastRound: this.#lastRound,
    };
  }

  /** Logs nothing periodic: each round's changes are events already. */
  report(): void {
    // Intentionally empty: storage changes and object transitions are logged as they happen.
  }

  /** Idempotent: a round in progress stops before its next call. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
