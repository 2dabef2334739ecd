/**
 * Counts restores where they can be seen: in the service, when the guard sees an expected
 * share file come back (`restored` alert). A file the service's own auto-restore put back
 * is already counted as trigger="auto" and is skipped here; any other file that comes back
 * as the vault's own entry (the same inode: `cvat-warden restore` links it back) counts as
 * restored, trigger="command". The `restore` command itself counts nothing: its process
 * exits, and its counters with it. A file put back by hand (another inode) is not a
 * restore from the vault and is not counted; nor, in reflink mode, is a command's restore
 * (a copy has its own inode, indistinguishable from a hand copy).
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileAlert } from '../guard/index.js';
import type { Metrics } from '../metrics.js';
import type { Vault } from '../vault/vault.js';

/** Own restores awaiting their `restored` alert, at most this many (oldest forgotten first). */
const PENDING_OWN_RESTORES = 10_000;

export class RestoreObserver {
  readonly #vault: Vault;
  readonly #shareDir: string;
  readonly #metrics: Pick<Metrics, 'restores'>;
  readonly #own = new Set<string>();

  constructor(vault: Vault, shareDir: string, metrics: Pick<Metrics, 'restores'>) {
    this.#vault = vault;
    this.#shareDir = shareDir;
    this.#metrics = metrics;
  }

  /** Before auto-restore puts `rel` back: its coming back is the service's own doing. */
  expectOwn(rel: string): void {
    this.#own.delete(rel);
    this.#own.add(rel);
    if (this.#own.size > PENDING_OWN_RESTORES) this.#own.delete(this.#own.values().next().value!);
  }

  /** Auto-restore did not put it back after all. */
  forgetOwn(rel: string): void {
    this.#own.delete(rel);
  }

  /** A `restored` alert: counts it when it is the vault's entry back in place and not the service's doing. */
  async onBack(alert: FileAlert): Promise<'own' | 'command' | 'not_from_vault'> {
    if (this.#own.delete(alert.path)) return 'own';
    const ino = this.#vault.inodeOf(alert.path);
    const st = await lstat(join(this.#shareDir, alert.path)).catch(() => null);
    if (ino === undefined || !st?.isFile() || st.ino !== ino) return 'not_from_vault';
    this.#metrics.restores.inc({ outcome: 'restored', trigger: 'command' });
    return 'command';
  }
}
