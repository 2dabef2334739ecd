/** The ledger's mutations shared by the API and journal replay. */
import { OUTCOME, type SlotStore } from './ledger-store.js';
import type { JournalOp } from './ledger-format.js';

/** The date rule, shared by the API and journal replay. Returns whether anything changed. */
export function applySetDate(store: SlotStore, series: string, date: string): boolean {
  const id = store.ensureSeries(series);
  const known = store.dateOf(id);
  if (known === date) return false;
  if (known === undefined) store.dropOutcome(id, OUTCOME.warm);
  else store.clearEntries(id);
  store.setDate(id, date);
  return true;
}

export function applyOp(store: SlotStore, op: JournalOp): void {
  switch (op.op) {
    case 'R':
      store.set(store.ensureSeries(op.series), op.slot, op.confirmedAt, op.flags, op.checksum);
      break;
    case 'D':
      applySetDate(store, op.series, op.date);
      break;
    case 'F': {
      const id = store.idOf(op.series);
      if (id !== undefined) store.deleteSeries(id);
      break;
    }
  }
}
