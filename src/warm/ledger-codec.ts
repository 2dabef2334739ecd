/** The chunk ledger's codec over src/state/: its files, records and snapshot (format in ledger-format.ts). */
import type { StateCodec } from '../state/codec.js';
import { FORMAT_VERSION, JOURNAL_TAG, decodeSnapshotInto, parseOp, snapshotClaimedEntries, writeSnapshot } from './ledger-format.js';
import { applyOp } from './ledger-ops.js';
import { SlotStore } from './ledger-store.js';

export const LEDGER_FILES = {
  journal: 'ledger.journal',
  snapshot: 'ledger.snapshot',
  lock: 'ledger.lock',
  /** The previous generation, kept until the next compaction: the fallback of a damaged snapshot. */
  previousJournal: 'ledger.journal.prev',
  previousSnapshot: 'ledger.snapshot.prev',
} as const;

/** What a compaction writes: the store, stamped with the ledger's clock. */
export interface LedgerSnapshotSource {
  store: SlotStore;
  writtenAt: number;
}

export const ledgerCodec: StateCodec<SlotStore, LedgerSnapshotSource> = {
  label: 'ledger',
  files: LEDGER_FILES,
  damage: { journal: 'ledger_journal', snapshot: 'ledger_snapshot' },
  journalTag: JOURNAL_TAG,
  version: FORMAT_VERSION,
  refuseNewer: true,
  empty: () => new SlotStore(),
  decodeSnapshot: (buf, into) => decodeSnapshotInto(buf, into).generation,
  claimedEntries: snapshotClaimedEntries,
  applyRecord(store, payload) {
    const op = parseOp(payload);
    if (op) applyOp(store, op);
    return op !== undefined;
  },
  writeSnapshot({ store, writtenAt }, generation, write) {
    writeSnapshot(store, generation, writtenAt, write);
    return store.entries;
  },
  lossNote: 'journal alone (no usable previous generation); lost chunks are re-confirmed',
};
