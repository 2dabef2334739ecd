/**
 * `Journaled`: one state directory's journaled state, whatever its format (the codec).
 *
 *   open     lock (when the codec names one) → snapshot → replay the journal (recover.ts);
 *            a torn last append is truncated away, a missing journal started fresh
 *   append   a batch of records in one write, fdatasync'd
 *   compact  a snapshot of the caller's state (generation + 1, written atomically), then a
 *            fresh journal of that generation; the generation replaced is kept (`*.prev`) as
 *            the fallback of a damaged snapshot, unless the files could not vouch for memory
 *   close    releases the journal and the lock (idempotent)
 *
 * A crash at any point loses at most the batch being written: a torn last line is ignored,
 * a snapshot is replaced atomically, and a journal made stale by a newer snapshot is
 * recognised by its generation. Batching policy (when to append, when to compact) is the
 * caller's: the ledger and the guard batch differently.
 */
import { chmod, mkdir, open, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { WardenError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StateCodec } from './codec.js';
import type { StateDamage } from './damage.js';
import { STATE_FILE_MODE, errnoCode, writeAll, writeFileAtomic } from './files.js';
import { encodeJournalLines, journalHeaderLine } from './journal-lines.js';
import { LockHeldError, acquireLock } from './lock.js';
import { NewerFormatError, recoverState } from './recover.js';

export interface JournaledOptions {
  /** fdatasync each append and fsync snapshots (default true). Only tests turn this off. */
  durable?: boolean | undefined;
  logger?: Logger | undefined;
}

/** Directories whose locked state this process holds (a second open of one is refused). */
const openLocked = new Set<string>();

/** A WardenError('STATE_IO') naming what failed; fs errors keep their code ("EACCES: …"). */
export function stateError(message: string, cause?: unknown): WardenError {
  if (cause === undefined) return new WardenError('STATE_IO', message);
  const detail = cause instanceof Error && /^E[A-Z]+: /.test(cause.message) ? cause.message : describeError(cause);
  return new WardenError('STATE_IO', `${message}: ${detail}`, { cause });
}

type Release = () => Promise<void>;

interface Init<S> {
  state: S;
  generation: number;
  journal: FileHandle;
  bytes: number;
  records: number;
  needCompaction: boolean;
  damage: StateDamage[];
  release: Release | undefined;
}

export class Journaled<S, W = S> {
  readonly dir: string;
  readonly codec: StateCodec<S, W>;
  /** The state rebuilt at open; the caller takes it over. */
  readonly state: S;
  /** What opening found damaged and how it was recovered (empty when the files were intact). */
  readonly damage: readonly StateDamage[];
  readonly #durable: boolean;
  readonly #release: Release | undefined;
  private journal: FileHandle;
  #bytes: number;
  #records: number;
  #generation: number;
  /** The files cannot simply be appended to (damage, a failed write): the next write must be a compaction. */
  #needCompaction: boolean;
  #closing: Promise<void> | undefined;

  private constructor(dir: string, codec: StateCodec<S, W>, durable: boolean, init: Init<S>) {
    this.dir = dir;
    this.codec = codec;
    this.#durable = durable;
    this.state = init.state;
    this.damage = init.damage;
    this.journal = init.journal;
    this.#bytes = init.bytes;
    this.#records = init.records;
    this.#generation = init.generation;
    this.#needCompaction = init.needCompaction;
    this.#release = init.release;
  }

  /** Records in the journal since the last snapshot. */
  get records(): number {
    return this.#records;
  }

  get generation(): number {
    return this.#generation;
  }

  /** True while the files do not hold memory (damage recovered, a write failed): compact next. */
  get needsCompaction(): boolean {
    return this.#needCompaction;
  }

  /**
   * Opens (creating if missing) the state in `dir`. Throws WardenError('STATE_IO') naming the
   * directory when it cannot be created, written or locked, or holds files of a newer format.
   */
  static async open<S, W>(stateDir: string, codec: StateCodec<S, W>, options: JournaledOptions = {}): Promise<Journaled<S, W>> {
    const dir = resolve(stateDir);
    try {
      await mkdir(dir, { recursive: true });
      if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (error) {
      throw stateError(`cannot create state directory ${dir}`, error);
    }
    const release = codec.files.lock === undefined ? undefined : await lockDir(dir, codec.label, codec.files.lock);
    try {
      return await Journaled.#load(dir, codec, options, release);
    } catch (error) {
      if (release) {
        openLocked.delete(dir);
        await release();
      }
      throw error instanceof WardenError ? error : stateError(`cannot open the ${codec.label} in ${dir}`, error);
    }
  }

  static async #load<S, W>(dir: string, codec: StateCodec<S, W>, options: JournaledOptions, release: Release | undefined): Promise<Journaled<S, W>> {
    const durable = options.durable ?? true;
    const journalPath = join(dir, codec.files.journal);
    // Leftovers of an interrupted compaction; we are the only writer, so they are ours.
    await unlink(`${join(dir, codec.files.snapshot)}.tmp`).catch(() => undefined);
    await unlink(`${journalPath}.tmp`).catch(() => undefined);
    let recovered;
    try {
      recovered = await recoverState(dir, codec, { logger: options.logger, repair: true });
    } catch (error) {
      if (!(error instanceof NewerFormatError)) throw error;
      throw stateError(`${error.message}; upgrade, or delete the ${codec.label} files to start over`);
    }
    // State files written before issue 17 could be 0644 (the ledger's): every one is 0600 now.
    for (const name of [codec.files.journal, codec.files.snapshot, codec.files.previousJournal, codec.files.previousSnapshot]) {
      await chmod(join(dir, name), STATE_FILE_MODE).catch(ignoreMissing);
    }
    let { needCompaction } = recovered;
    let bytes = recovered.journal?.bytes ?? 0;
    const records = recovered.journal?.records ?? 0;
    if (!recovered.journal) {
      // No usable journal (none yet, stale, or unknown generation): start one for the
      // current generation. If the snapshot was lost, needCompaction rewrites it soon.
      bytes = await freshJournal(journalPath, codec, recovered.generation, durable);
    } else if (recovered.journal.tornBytes > 0 && !needCompaction) {
      // A torn last append (a crash mid-write): the normal end of a journal, not damage.
      options.logger?.debug({ dir, tornBytes: recovered.journal.tornBytes }, `${codec.label} journal ended in a torn append; truncated it`);
      await truncate(journalPath, bytes);
    } else if (recovered.journal.tornBytes > 0) needCompaction = true;
    for (const note of recovered.damage) options.logger?.warn({ dir, ...note }, `${codec.label} state damaged; kept what was intact`);
    const journal = await open(journalPath, 'r+');
    const init = { state: recovered.state, generation: recovered.generation, journal, bytes, records, needCompaction, damage: recovered.damage, release };
    return new Journaled(dir, codec, durable, init);
  }

  /** Appends `payloads[from..to)` as one batch and makes it durable. Throws STATE_IO. */
  async append(payloads: readonly string[], from = 0, to = payloads.length): Promise<void> {
    if (to <= from) return;
    await this.appendEncoded(encodeJournalLines(payloads, from, to), to - from);
  }

  /**
   * Appends `records` lines already encoded by `encodeJournalLines` (a writer that queues
   * appends encodes at once, so its payload strings die young instead of waiting in the
   * old generation for the write). Throws STATE_IO.
   */
  async appendEncoded(buf: Buffer, records: number): Promise<void> {
    if (records <= 0) return;
    this.#assertOpen();
    try {
      await writeAll(this.journal, buf, this.#bytes);
      if (this.#durable) await this.journal.datasync();
    } catch (error) {
      // The journal may now end in a partial batch: never append after it. The
      // compaction that replaces it captures memory.
      this.#needCompaction = true;
      throw stateError(`cannot append to the ${this.codec.label} journal in ${this.dir}`, error);
    }
    this.#bytes += buf.length;
    this.#records += records;
  }

  /**
   * Writes a snapshot of `source` (generation + 1), then a fresh journal of that generation;
   * returns the entries written. A crash between the two leaves a stale journal, which
   * recovery ignores. The generation replaced is kept as `*.prev` while the files vouched
   * for memory. Throws STATE_IO; the next write is then a compaction again.
   */
  async compact(source: W): Promise<number> {
    this.#assertOpen();
    const { files } = this.codec;
    const path = (name: string) => join(this.dir, name);
    const keepPrevious = !this.#needCompaction;
    const generation = this.#generation + 1;
    let entries = 0;
    try {
      await writeFileAtomic(path(files.snapshot), (write) => (entries = this.codec.writeSnapshot(source, generation, write)), {
        durable: this.#durable,
        beforeRename: async () => {
          const kept = keepPrevious && (await rename(path(files.snapshot), path(files.previousSnapshot)).then(() => true, ignoreMissing));
          if (!kept) await rm(path(files.previousSnapshot), { force: true });
        },
      });
      // From here the old journal is stale (lower generation) until replaced.
      this.#generation = generation;
      await rename(path(files.journal), path(files.previousJournal)).catch(ignoreMissing);
      this.#bytes = await freshJournal(path(files.journal), this.codec, generation, this.#durable);
      const old = this.journal;
      this.journal = await open(path(files.journal), 'r+');
      await old.close().catch(() => undefined);
      this.#records = 0;
      this.#needCompaction = false;
    } catch (error) {
      this.#needCompaction = true;
      throw stateError(`cannot compact the ${this.codec.label} in ${this.dir}`, error);
    }
    for (const legacy of files.legacy ?? []) await rm(path(legacy), { force: true }).catch(() => undefined);
    return entries;
  }

  /** Releases the journal and the lock. Idempotent; writes afterwards throw. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.journal.close().catch(() => undefined);
      if (this.#release) {
        openLocked.delete(this.dir);
        await this.#release();
      }
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closing) throw new Error(`the ${this.codec.label} in ${this.dir} is closed`);
  }
}

/** Writes a journal holding only its header, atomically; returns its size. */
async function freshJournal<S, W>(file: string, codec: StateCodec<S, W>, generation: number, durable: boolean): Promise<number> {
  const header = encodeJournalLines([journalHeaderLine(codec.journalTag, codec.version, generation)]);
  await writeFileAtomic(file, header, { durable });
  return header.length;
}

async function lockDir(dir: string, label: string, lockName: string): Promise<Release> {
  if (openLocked.has(dir)) throw stateError(`the ${label} in ${dir} is already open in this process`);
  openLocked.add(dir); // before any await: a concurrent open in this process must fail too
  try {
    return await acquireLock(join(dir, lockName));
  } catch (error) {
    openLocked.delete(dir);
    if (error instanceof LockHeldError) {
      throw stateError(`the ${label} in ${dir} is in use by process ${error.pid} (if it is not a cvat-warden, delete ${join(dir, lockName)})`);
    }
    const code = errnoCode(error);
    const hint = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'state directory is not writable' : 'cannot lock state directory';
    throw stateError(`${hint}: ${dir}`, error);
  }
}

/** For file steps that may find nothing to act on: a missing file is no error (false). */
function ignoreMissing(error: unknown): false {
  if (errnoCode(error) !== 'ENOENT') throw error;
  return false;
}
