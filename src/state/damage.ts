/**
 * What loading a state file could not keep, in one shape for the ledger and the guard
 * baseline: logged at warn level, shown in /status, counted in
 * `cvat_warden_state_records_damaged_total{store}`.
 */

/** The state files whose damage is counted (bounded: the metric's label values). */
export const STATE_STORES = ['ledger_journal', 'ledger_snapshot', 'baseline_journal', 'baseline_snapshot'] as const;
export type StateStore = (typeof STATE_STORES)[number];

export interface StateDamage {
  store: StateStore;
  /** The damaged file. */
  file: string;
  /**
   * Journal lines skipped (bad CRC, garbage, malformed); for an unreadable snapshot, the
   * entries it claims to hold (at least 1), whether or not a fallback recovered them.
   */
  recordsSkipped: number;
  /** Bytes skipped in the damaged file. */
  bytesSkipped: number;
  /**
   * Snapshot entries that could not be recovered: 0 when a fallback rebuilt them all,
   * null when unknown (the snapshot's own count is unreadable). 0 for a journal: its
   * skipped lines are the loss.
   */
  entriesLost: number | null;
  /** How the state was rebuilt, e.g. 'previous snapshot + journals', 'journal alone'. */
  fallback: string | null;
}
