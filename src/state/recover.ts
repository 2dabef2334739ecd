/**
 * Rebuilds a journaled state from its files, keeping everything intact: the snapshot, then
 * the journal of the same generation record by record (a damaged line is skipped and
 * counted, the records after it apply). A damaged or missing snapshot falls back to the
 * previous generation kept by the last compaction — previous snapshot + previous journal +
 * current journal — which rebuilds exactly what the lost snapshot held.
 *
 * Read-only unless `repair` is set: then a damaged snapshot is moved aside and a stale
 * journal kept as the previous one. The writer compacts whenever `needCompaction` is set,
 * which makes the files clean again. Written for the chunk ledger first (issue 16) and
 * shared by every codec since issue 17.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { SnapshotError, type StateCodec } from './codec.js';
import type { StateDamage } from './damage.js';
import { readIfExists } from './files.js';
import { readJournalHeader, replayJournalRecords, type JournalHeader } from './journal-lines.js';

export interface Recovered<S> {
  state: S;
  generation: number;
  /** The journal to append to (its generation is `generation`), or undefined: start a fresh one. */
  journal: { bytes: number; records: number; tornBytes: number } | undefined;
  /** The files do not match memory (damage, fallback, lost snapshot): compact at once. */
  needCompaction: boolean;
  damage: StateDamage[];
}

/** Thrown for files of a newer format: never overwrite them. */
export class NewerFormatError extends Error {
  override name = 'NewerFormatError';
  constructor(file: string, version: number, reads: number) {
    super(`${file} was written by a newer cvat-warden (format ${version}, this one reads ${reads})`);
  }
}

export interface RecoverOptions {
  logger?: Logger | undefined;
  /** Move a damaged snapshot aside and keep a stale journal as the previous one (the writer's open). */
  repair?: boolean;
}

export async function recoverState<S, W>(dir: string, codec: StateCodec<S, W>, options: RecoverOptions = {}): Promise<Recovered<S>> {
  const run = new Recovery(dir, codec, options);
  return run.recover();
}

class Recovery<S, W> {
  readonly damage: StateDamage[] = [];
  journalBuf: Buffer | undefined;
  journalHeader: JournalHeader | 'damaged' | undefined;

  readonly dir: string;
  readonly codec: StateCodec<S, W>;
  readonly options: RecoverOptions;

  constructor(dir: string, codec: StateCodec<S, W>, options: RecoverOptions) {
    this.dir = dir;
    this.codec = codec;
    this.options = options;
  }

  path(name: 'journal' | 'snapshot' | 'previousJournal' | 'previousSnapshot'): string {
    return join(this.dir, this.codec.files[name]);
  }

  /** A journal header of this format, 'damaged', or undefined (no journal, or nothing complete in it). */
  headerOf(buf: Buffer | undefined, path: string): JournalHeader | 'damaged' | undefined {
    const header = buf ? readJournalHeader(buf, this.codec.journalTag) : undefined;
    if (header === undefined || header === 'damaged') return header;
    if (header.version > this.codec.version && this.codec.refuseNewer) throw new NewerFormatError(path, header.version, this.codec.version);
    return header.version === this.codec.version ? header : 'damaged';
  }

  loadSnapshot(buf: Buffer, path: string): { state: S; generation: number } | SnapshotError {
    const state = this.codec.empty();
    try {
      return { state, generation: this.codec.decodeSnapshot(buf, state) };
    } catch (error) {
      if (!(error instanceof SnapshotError)) throw error;
      if (error.newerVersion !== undefined) throw new NewerFormatError(path, error.newerVersion, this.codec.version);
      return error;
    }
  }

  /** Replays a journal into `state`; damaged lines are noted. */
  replay(buf: Buffer, file: string, state: S): { bytes: number; records: number; tornBytes: number; damaged: boolean } {
    const scan = replayJournalRecords(buf, this.codec.journalTag, (payload) => this.codec.applyRecord(state, payload));
    if (scan.damagedLines > 0) {
      this.damage.push({
        store: this.codec.damage.journal,
        file,
        recordsSkipped: scan.damagedLines,
        bytesSkipped: scan.damagedBytes,
        entriesLost: 0,
        fallback: 'records after the damage kept',
      });
    }
    return { bytes: scan.completeBytes, records: scan.lines, tornBytes: scan.tornBytes, damaged: scan.damagedLines > 0 };
  }

  replayCurrent(state: S) {
    if (!this.journalBuf) return { bytes: 0, records: 0, tornBytes: 0, damaged: false };
    return this.replay(this.journalBuf, this.path('journal'), state);
  }

  async recover(): Promise<Recovered<S>> {
    this.journalBuf = await readIfExists(this.path('journal'));
    this.journalHeader = this.headerOf(this.journalBuf, this.path('journal'));
    const snapshotBuf = await readIfExists(this.path('snapshot'));
    const snapshot = snapshotBuf ? this.loadSnapshot(snapshotBuf, this.path('snapshot')) : undefined;
    if (snapshot !== undefined && !(snapshot instanceof SnapshotError)) return this.fromSnapshot(snapshot.state, snapshot.generation);
    return this.withoutSnapshot(snapshotBuf, snapshot);
  }

  async fromSnapshot(state: S, generation: number): Promise<Recovered<S>> {
    const { journalHeader, damage } = this;
    let gen = journalHeader === 'damaged' ? await this.inferDamagedHeader(generation) : journalHeader?.generation;
    if (journalHeader === 'damaged' && gen === undefined) {
      // Conservative: replaying a stale journal over a newer snapshot would resurrect old
      // records (voided entries taken as true). Skipping it only costs re-confirmation.
      const skipped = replayJournalRecords(this.journalBuf!, this.codec.journalTag, () => true);
      damage.push({
        store: this.codec.damage.journal,
        file: this.path('journal'),
        recordsSkipped: skipped.lines + skipped.damagedLines,
        bytesSkipped: this.journalBuf!.length,
        entriesLost: 0,
        fallback: 'journal ignored: its generation is unknown',
      });
      return { state, generation, journal: undefined, needCompaction: true, damage };
    }
    if (gen === undefined) return { state, generation, journal: undefined, needCompaction: false, damage };
    if (gen < generation) {
      // A compaction renamed its snapshot and died before retiring this journal: the
      // snapshot holds its records. Keep it as the previous journal the fallback needs.
      this.options.logger?.debug(
        { dir: this.dir, snapshotGeneration: generation, journalGeneration: gen },
        `${this.codec.label} journal predates the snapshot; ignoring it`,
      );
      if (gen === generation - 1 && this.options.repair) await rename(this.path('journal'), this.path('previousJournal'));
      return { state, generation, journal: undefined, needCompaction: false, damage };
    }
    let base = state;
    if (gen > generation) {
      // Not produced by our protocol (snapshot restored from elsewhere?): trust the
      // journal alone — its records are true, merely incomplete.
      this.options.logger?.warn(
        { dir: this.dir, snapshotGeneration: generation, journalGeneration: gen },
        `${this.codec.label} journal is newer than its snapshot; ignoring the snapshot`,
      );
      base = this.codec.empty();
    } else gen = generation;
    const journal = this.replayCurrent(base);
    return { state: base, generation: gen, journal, needCompaction: journal.damaged || journalHeader === 'damaged', damage };
  }

  async withoutSnapshot(snapshotBuf: Buffer | undefined, snapshot: SnapshotError | undefined): Promise<Recovered<S>> {
    const { journalHeader, damage, codec } = this;
    if (snapshot && this.options.repair) {
      const aside = `${this.path('snapshot')}.corrupt-${Date.now()}`;
      await rename(this.path('snapshot'), aside).catch(() => undefined);
      this.options.logger?.warn({ dir: this.dir, error: snapshot.message, movedTo: aside }, `${codec.label} snapshot unreadable; moved aside`);
    }
    // The damaged snapshot's report: what it claimed to hold, and what the fallback kept of it.
    const snapshotDamage = (recovered: boolean, fallback: string): StateDamage => {
      const claimed = codec.claimedEntries(snapshotBuf!);
      return {
        store: codec.damage.snapshot,
        file: this.path('snapshot'),
        recordsSkipped: Math.max(1, claimed ?? 1),
        bytesSkipped: snapshotBuf!.length,
        entriesLost: recovered ? 0 : (claimed ?? null),
        fallback,
      };
    };
    const fallback = await this.fromPreviousGeneration();
    if (fallback) {
      if (snapshot) damage.push(snapshotDamage(true, 'previous snapshot + previous journal + journal'));
      else this.options.logger?.info({ dir: this.dir }, `${codec.label} snapshot missing (compaction interrupted); rebuilt from the previous generation`);
      return fallback;
    }
    const state = codec.empty();
    if (snapshot) damage.push(snapshotDamage(false, codec.lossNote));
    // Never compacted yet: an older format's files come first, the journal's records override them.
    if (snapshotBuf === undefined) await codec.loadLegacy?.(this.dir, state);
    // Without a snapshot a journal's records are true facts whatever its generation;
    // a damaged header costs only the header. Compaction then starts a new generation.
    if (journalHeader === undefined) return { state, generation: 0, journal: undefined, needCompaction: snapshotBuf !== undefined, damage };
    const generation = journalHeader === 'damaged' ? 0 : journalHeader.generation;
    const journal = this.replayCurrent(state);
    const needCompaction = snapshotBuf !== undefined || journal.damaged || journalHeader === 'damaged';
    return { state, generation, journal, needCompaction, damage };
  }

  /**
   * The generation of a journal whose header is damaged, when it can be known: a
   * compaction retires the journal of generation G-1 (renames it to the previous
   * journal) only after the snapshot of generation G is in place, and creates the
   * journal of G after that; so a previous journal of G-1 means the current one is G.
   */
  async inferDamagedHeader(snapshotGeneration: number): Promise<number | undefined> {
    const previous = this.headerOf(await readIfExists(this.path('previousJournal')), this.path('previousJournal'));
    return typeof previous === 'object' && previous.generation === snapshotGeneration - 1 ? snapshotGeneration : undefined;
  }

  /**
   * Previous snapshot (generation P) + previous journal (P) + current journal (P+1), or the
   * previous snapshot + current journal (P) when a compaction died before its rename. The
   * chain must be unbroken: a journal that does not follow is not applied, and then the
   * fallback is refused (older state under newer records could hold voided entries).
   */
  async fromPreviousGeneration(): Promise<Recovered<S> | undefined> {
    const current = this.journalHeader;
    const prevBuf = await readIfExists(this.path('previousSnapshot'));
    const prev = prevBuf ? this.loadSnapshot(prevBuf, this.path('previousSnapshot')) : undefined;
    if (prev === undefined || prev instanceof SnapshotError) return undefined;
    const prevJournalBuf = await readIfExists(this.path('previousJournal'));
    const prevHeader = this.headerOf(prevJournalBuf, this.path('previousJournal'));
    const bridged = typeof prevHeader === 'object' && prevHeader.generation === prev.generation;
    const expected = bridged ? prev.generation + 1 : prev.generation;
    const currentGeneration = current === 'damaged' && bridged ? expected : typeof current === 'object' ? current.generation : undefined;
    if (currentGeneration !== undefined && currentGeneration !== expected) return undefined;
    if (current === 'damaged' && currentGeneration === undefined) return undefined;
    if (!bridged && current === undefined) return undefined; // nothing proves the chain is whole
    if (bridged) this.replay(prevJournalBuf!, this.path('previousJournal'), prev.state);
    const journal = current === undefined ? undefined : this.replayCurrent(prev.state);
    return { state: prev.state, generation: expected, journal, needCompaction: true, damage: this.damage };
  }
}
