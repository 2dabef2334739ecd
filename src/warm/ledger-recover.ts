/**
 * Rebuilds the ledger's memory from its files, keeping everything intact: the snapshot,
 * then the journal of the same generation record by record (a damaged line is skipped
 * and counted, the records after it apply). A damaged or missing snapshot falls back to
 * the previous generation kept by the last compaction — previous snapshot + previous
 * journal + current journal — which rebuilds exactly what the lost snapshot held.
 * Read-only except for moving a damaged snapshot aside and keeping a stale journal as the
 * previous one; the caller compacts whenever `needCompaction` is set, which makes the files
 * clean again.
 */
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { StateDamage } from '../state/damage.js';
import {
  FORMAT_VERSION,
  SnapshotError,
  decodeSnapshotInto,
  readJournalHeader,
  replayJournal,
  snapshotClaimedEntries,
  type JournalHeader,
} from './ledger-format.js';
import { SlotStore } from './ledger-store.js';
import { applyOp } from './ledger-ops.js';

export interface RecoveredLedger {
  store: SlotStore;
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
  constructor(file: string, version: number) {
    super(`${file} was written by a newer cvat-warden (format ${version}, this one reads ${FORMAT_VERSION})`);
  }
}

const FILES = {
  journal: 'ledger.journal',
  snapshot: 'ledger.snapshot',
  previousJournal: 'ledger.journal.prev',
  previousSnapshot: 'ledger.snapshot.prev',
} as const;

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** A journal header of this format, 'damaged', or undefined (no journal, or nothing complete in it). */
function headerOf(buf: Buffer | undefined, path: string): JournalHeader | 'damaged' | undefined {
  const header = buf ? readJournalHeader(buf) : undefined;
  if (header === undefined || header === 'damaged') return header;
  if (header.version > FORMAT_VERSION) throw new NewerFormatError(path, header.version);
  return header.version === FORMAT_VERSION ? header : 'damaged';
}

function loadSnapshot(buf: Buffer, path: string): { store: SlotStore; generation: number } | SnapshotError {
  const store = new SlotStore();
  try {
    return { store, generation: decodeSnapshotInto(buf, store).generation };
  } catch (error) {
    if (!(error instanceof SnapshotError)) throw error;
    if (error.newerVersion !== undefined) throw new NewerFormatError(path, error.newerVersion);
    return error;
  }
}

/** `readOnly`: move nothing aside (a reader beside the process that owns the files, e.g. `impact` beside `run`). */
export async function recoverLedger(dir: string, log: Logger | undefined, options: { readOnly?: boolean } = {}): Promise<RecoveredLedger> {
  const path = (name: keyof typeof FILES) => join(dir, FILES[name]);
  const damage: StateDamage[] = [];
  const journalBuf = await readIfExists(path('journal'));
  const journalHeader = headerOf(journalBuf, path('journal'));

  /** Replays the current journal into `store`; damaged lines are noted. */
  const replayCurrent = (store: SlotStore) => {
    if (!journalBuf) return { bytes: 0, records: 0, tornBytes: 0, damaged: false };
    const scan = replayJournal(journalBuf, (op) => applyOp(store, op));
    if (scan.damagedLines > 0) {
      damage.push({
        store: 'ledger_journal',
        file: path('journal'),
        recordsSkipped: scan.damagedLines,
        bytesSkipped: scan.damagedBytes,
        entriesLost: 0,
        fallback: 'records after the damage kept',
      });
    }
    return { bytes: scan.completeBytes, records: scan.lines, tornBytes: scan.tornBytes, damaged: scan.damagedLines > 0 };
  };

  const snapshotBuf = await readIfExists(path('snapshot'));
  const snapshot = snapshotBuf ? loadSnapshot(snapshotBuf, path('snapshot')) : undefined;

  if (snapshot !== undefined && !(snapshot instanceof SnapshotError)) {
    const { store, generation } = snapshot;
    let gen = journalHeader === 'damaged' ? await inferDamagedHeader(generation) : journalHeader?.generation;
    if (journalHeader === 'damaged' && gen === undefined) {
      // Conservative: replaying a stale journal over a newer snapshot would resurrect
      // forgotten series and re-date others (chunks taken as warm that are not). Skipping
      // the journal only makes its chunks be re-confirmed.
      const skipped = replayJournal(journalBuf!, () => undefined);
      damage.push({
        store: 'ledger_journal',
        file: path('journal'),
        recordsSkipped: skipped.lines + skipped.damagedLines,
        bytesSkipped: journalBuf!.length,
        entriesLost: 0,
        fallback: 'journal ignored: its generation is unknown',
      });
      return { store, generation, journal: undefined, needCompaction: true, damage };
    }
    if (gen === undefined) return { store, generation, journal: undefined, needCompaction: false, damage };
    if (gen < generation) {
      // A compaction renamed its snapshot and died before retiring this journal: the
      // snapshot holds its records. Keep it as the previous journal the fallback needs.
      log?.debug({ dir, snapshotGeneration: generation, journalGeneration: gen }, 'ledger journal predates the snapshot; ignoring it');
      if (gen === generation - 1 && !options.readOnly) await rename(path('journal'), path('previousJournal'));
      return { store, generation, journal: undefined, needCompaction: false, damage };
    }
    let base = store;
    if (gen > generation) {
      // Not produced by our protocol (snapshot restored from elsewhere?): trust the
      // journal alone — its records are true, merely incomplete.
      log?.warn({ dir, snapshotGeneration: generation, journalGeneration: gen }, 'ledger journal is newer than its snapshot; ignoring the snapshot');
      base = new SlotStore();
    } else gen = generation;
    const journal = replayCurrent(base);
    return { store: base, generation: gen, journal, needCompaction: journal.damaged || journalHeader === 'damaged', damage };
  }

  // No usable current snapshot.
  if (snapshot instanceof SnapshotError && !options.readOnly) {
    const aside = `${path('snapshot')}.corrupt-${Date.now()}`;
    await rename(path('snapshot'), aside).catch(() => undefined);
    log?.warn({ dir, error: snapshot.message, movedTo: aside }, 'ledger snapshot unreadable; moved aside');
  }
  // The damaged snapshot's report: what it claimed to hold, and what the fallback kept of it.
  const snapshotDamage = (recovered: boolean, fallback: string): StateDamage => {
    const claimed = snapshotClaimedEntries(snapshotBuf!);
    return {
      store: 'ledger_snapshot',
      file: path('snapshot'),
      recordsSkipped: Math.max(1, claimed ?? 1),
      bytesSkipped: snapshotBuf!.length,
      entriesLost: recovered ? 0 : (claimed ?? null),
      fallback,
    };
  };
  const fallback = await fromPreviousGeneration(journalHeader);
  if (fallback) {
    if (snapshot instanceof SnapshotError) damage.push(snapshotDamage(true, 'previous snapshot + previous journal + journal'));
    else log?.info({ dir }, 'ledger snapshot missing (compaction interrupted); rebuilt from the previous generation');
    return fallback;
  }
  const store = new SlotStore();
  if (snapshot instanceof SnapshotError) damage.push(snapshotDamage(false, 'journal alone (no usable previous generation); lost chunks are re-confirmed'));
  // Without a snapshot a journal's records are true facts whatever its generation;
  // a damaged header costs only the header. Compaction then starts a new generation.
  if (journalHeader === undefined) return { store, generation: 0, journal: undefined, needCompaction: snapshot !== undefined, damage };
  const generation = journalHeader === 'damaged' ? 0 : journalHeader.generation;
  const journal = replayCurrent(store);
  return {
    store,
    generation,
    journal,
    needCompaction: snapshot !== undefined || journal.damaged || journalHeader === 'damaged',
    damage,
  };

  /**
   * The generation of a journal whose header is damaged, when it can be known: a
   * compaction retires the journal of generation G-1 (renames it to the previous
   * journal) only after the snapshot of generation G is in place, and creates the
   * journal of G after that; so a previous journal of G-1 means the current one is G.
   */
  async function inferDamagedHeader(snapshotGeneration: number): Promise<number | undefined> {
    const previous = headerOf(await readIfExists(path('previousJournal')), path('previousJournal'));
    return typeof previous === 'object' && previous.generation === snapshotGeneration - 1 ? snapshotGeneration : undefined;
  }

  /**
   * Previous snapshot (generation P) + previous journal (P) + current journal (P+1), or the
   * previous snapshot + current journal (P) when a compaction died before its rename. The
   * chain must be unbroken: a journal that does not follow is not applied, and then the
   * fallback is refused (older state under newer records could hold voided entries).
   */
  async function fromPreviousGeneration(current: JournalHeader | 'damaged' | undefined): Promise<RecoveredLedger | undefined> {
    const prevBuf = await readIfExists(path('previousSnapshot'));
    const prev = prevBuf ? loadSnapshot(prevBuf, path('previousSnapshot')) : undefined;
    if (prev === undefined || prev instanceof SnapshotError) return undefined;
    const prevJournalBuf = await readIfExists(path('previousJournal'));
    const prevHeader = headerOf(prevJournalBuf, path('previousJournal'));
    const bridged = typeof prevHeader === 'object' && prevHeader.generation === prev.generation;
    const expected = bridged ? prev.generation + 1 : prev.generation;
    const currentGeneration = current === 'damaged' && bridged ? expected : typeof current === 'object' ? current.generation : undefined;
    if (currentGeneration !== undefined && currentGeneration !== expected) return undefined;
    if (current === 'damaged' && currentGeneration === undefined) return undefined;
    if (!bridged && current === undefined) return undefined; // nothing proves the chain is whole
    if (bridged) {
      const scan = replayJournal(prevJournalBuf!, (op) => applyOp(prev.store, op));
      if (scan.damagedLines > 0) {
        damage.push({
          store: 'ledger_journal',
          file: path('previousJournal'),
          recordsSkipped: scan.damagedLines,
          bytesSkipped: scan.damagedBytes,
          entriesLost: 0,
          fallback: 'records after the damage kept',
        });
      }
    }
    const journal = current === undefined ? undefined : replayCurrent(prev.store);
    return { store: prev.store, generation: expected, journal, needCompaction: true, damage };
  }
}
