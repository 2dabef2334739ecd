/**
 * Holds V8's old-generation growth to small steps while `run` builds its share index, without
 * a process-start flag.
 *
 * Why: after each full GC V8 sets the next old-generation limit to the live size times a
 * factor it picks from GC and allocation speeds, up to 4 on a machine with this much memory
 * (heap-controller.cc `MemoryController::GrowingFactor`, `MaxGrowingFactor`). A first
 * discovery allocates fast (CVAT's answers, the index, the journal) while the live index only
 * grows, so the limit races ahead and the resident peak at ready carries tens of MB of
 * garbage not yet collected. `--heap-growing-percent=N` replaces the factor with 1 + N/100
 * and is read each time a limit is computed, so it can be set at run time (the same reason
 * as young-generation.ts: the npm bin cannot pass node flags where `env -S` is missing).
 *
 * Measured (`run` with the guard over 1,000,000 share files against bench/fast-cvat.mjs,
 * docs/benchmarks.md, 2026-12-06): peak RSS 356–361 MB → 311–321 MB with 25 %, ready
 * +9–12 % (≈ +1 CPU-s); 10–20 % cost more time for no less memory, 40 % and 60 % kept
 * 329 and 339 MB. Held only until the first discovery ends: the steady state keeps V8's
 * own factor, as measured before. An admin's own flag wins: nothing is changed then.
 */
import { setFlagsFromString } from 'node:v8';

/** The old generation's growth per step while a share guard's first discovery runs. */
export const GUARD_START_HEAP_GROWING_PERCENT = 25;

/** V8's default: 0 lets it pick the factor itself. */
const V8_DEFAULT_GROWING_PERCENT = 0;

/** True when the process was started with its own heap growing percent. */
export function heapGrowthSetByAdmin(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg));
}

/**
 * Sets the old generation's growth per step to `percent` until the returned release is
 * called (idempotent), which gives V8 its own choice back. A no-op when the admin set it.
 */
export function holdHeapGrowth(percent: number): () => void {
  if (heapGrowthSetByAdmin()) return () => undefined;
  setFlagsFromString(`--heap-growing-percent=${Math.max(1, Math.round(percent))}`);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    setFlagsFromString(`--heap-growing-percent=${V8_DEFAULT_GROWING_PERCENT}`);
  };
}
