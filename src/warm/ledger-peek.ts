/**
 * The ledger as another process left it, read without its lock and without writing:
 * for `impact` (and `check`) beside a running service, which owns the files. The
 * snapshot is replaced by rename and the journal only appended, so one read sees a
 * consistent generation, at most missing the last unflushed batch (~200 ms) or a torn
 * last line (skipped). A compaction between the two reads shows as a stale journal:
 * the snapshot alone is then used, which is what it held a moment earlier.
 */
import { recoverState } from '../state/recover.js';
import { ledgerCodec } from './ledger-codec.js';
import { CODE_MASK, OUTCOME_NAMES } from './ledger-store.js';
import type { Outcome } from './ledger-store.js';

export interface LedgerPeek {
  /** When the chunk of `series`/`slot` was confirmed, with its outcome; undefined when the ledger never saw it. */
  get(series: string, slot: number): { confirmedAt: number; outcome: Outcome } | undefined;
  entries: number;
}

/** Reads `<dir>/ledger.*` once; throws when there is nothing readable (no ledger, newer format). */
export async function peekLedger(dir: string): Promise<LedgerPeek> {
  // Without `repair`: nothing is moved aside, the owner's files stay as they are.
  const { state: store } = await recoverState(dir, ledgerCodec);
  return {
    entries: store.entries,
    get(series, slot) {
      const id = store.idOf(series);
      if (id === undefined) return undefined;
      const p = store.indexOf(id, slot);
      if (p < 0) return undefined;
      return { confirmedAt: store.confirmedAtAt(p), outcome: OUTCOME_NAMES[store.flagsAt(p) & CODE_MASK] as Outcome };
    },
  };
}
