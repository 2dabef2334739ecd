/**
 * What a journaled state file set needs from its format: the codec. The record journal,
 * the snapshot chain, recovery and compaction live in src/state/ once; a codec only says
 * how its records and snapshots are spelled. The chunk ledger (src/warm/ledger-codec.ts)
 * and the guard's baseline (src/guard/baseline-codec.ts) are the two codecs.
 */
import type { StateStore } from './damage.js';

/** The file names of one state: the current generation, the previous one kept as a fallback, an optional lock. */
export interface StateFiles {
  journal: string;
  snapshot: string;
  /** The generation a compaction replaced, kept until the next one: the fallback of a damaged snapshot. */
  previousJournal: string;
  previousSnapshot: string;
  /** Single-writer lock (O_EXCL file naming its owner); without it the caller is the only writer. */
  lock?: string;
  /** Files of an older format, read while no snapshot exists and removed by the first compaction. */
  legacy?: readonly string[];
}

/** A snapshot that cannot be used (damaged, foreign, or an unsupported version). */
export class SnapshotError extends Error {
  override name = 'SnapshotError';
  /** Set when the file is a valid snapshot of a newer format version: never overwrite it. */
  readonly newerVersion: number | undefined;

  constructor(message: string, newerVersion?: number) {
    super(message);
    this.newerVersion = newerVersion;
  }
}

/**
 * One format over the record journal. `S` is the state a load rebuilds, `W` what a
 * compaction writes (the ledger writes the store it loads; the guard writes its live index).
 */
export interface StateCodec<S, W = S> {
  /** Names the state in errors and logs, e.g. 'ledger', 'share baseline'. */
  label: string;
  files: StateFiles;
  /** The damage metric's label values for the journal and the snapshot. */
  damage: { journal: StateStore; snapshot: StateStore };
  /** The journal header's tag (one letter) and the format version it carries. */
  journalTag: string;
  version: number;
  /**
   * Whether a journal of a newer format version is refused (true: nothing is overwritten,
   * the open fails) or read as damaged (false).
   */
  refuseNewer: boolean;
  /** An empty state. */
  empty(): S;
  /** Validates a snapshot and loads it into an empty state; returns its generation. Throws SnapshotError before touching `into`. */
  decodeSnapshot(buf: Buffer, into: S): number;
  /** The entry count a damaged snapshot claims, when readable (for the damage report). */
  claimedEntries(buf: Buffer): number | undefined;
  /** Applies one record payload; false refuses it as malformed (it then counts as damage). */
  applyRecord(state: S, payload: string): boolean;
  /** Encodes a snapshot of `source` piece by piece (synchronously); returns the entries written. */
  writeSnapshot(source: W, generation: number, write: (piece: Buffer) => void): number;
  /** Loads files of an older format (`files.legacy`) into the state; runs only when no snapshot exists. */
  loadLegacy?(dir: string, into: S): Promise<void>;
  /** What losing the snapshot without a usable previous generation costs, for the damage report. */
  lossNote: string;
}
