/**
 * Caps V8's young generation for a one-shot command that allocates much and keeps little
 * (`warm`), without a process-start flag.
 *
 * Why: V8 doubles the young generation (two semi-spaces) whenever more bytes survived
 * scavenges since its last growth than it holds (heap.cc CheckNewSpaceExpansionCriteria),
 * so any long pass ends at the maximum, 2 × 16 MB on Node 20 — resident for the whole run.
 * `--max-semi-space-size=4` would bound it, but only at process start: in the npm bin's
 * shebang it needs `env -S`, which BusyBox's env (Alpine) rejects, so the bin would fail
 * outright there; a re-exec keeps a second node process (~45 MB) alive beside the first.
 *
 * How: the growth step is read when V8 grows the space (new-spaces.cc
 * SemiSpaceNewSpace::Grow: `min(MaximumCapacity(), semi_space_growth_factor ×
 * TotalCapacity())`), so it can be changed at run time. `holdYoungGeneration` sets it to 1
 * (a growth is a no-op) before the config and the client load — their synchronous module
 * evaluation grows 2 MB to 16 MB in two doublings between two turns of the event loop,
 * faster than anything observing GCs could react; `growYoungGenerationTo` then, once the
 * command's modules are loaded, lets it double (V8's own step) while it is below `maxBytes`
 * and sets 1 again after the GC that reached it (seen as a `gc` performance entry). Only
 * doubling, because the size V8 reports counts the second semi-space only once the first
 * scavenge has committed it (1 MB, then 2 MB for the same 1 MB semi-spaces), so a computed
 * one-step factor could overshoot. A second doubling before the entry is seen would need
 * as many bytes surviving as the young generation holds, in one synchronous stretch; a
 * warm pass awaits a request per chunk. At worst it ends at V8's own maximum, never above.
 *
 * Measured (`warm --all` against bench/fast-cvat.mjs, Node 20, docs/benchmarks.md): at
 * 1,000,000 chunks 8 MB instead of 32 MB takes the peak RSS from 192–201 MB to 147–149 MB
 * (with the planner's own cut) for ~15 % more client CPU (~26 µs a chunk, nothing beside
 * a real chunk build); 2 MB (held at V8's initial size) cost ~40 % more CPU at 200,000.
 *
 * An admin who sets the semi-space size (NODE_OPTIONS, node flags) keeps it: the cap stands aside.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** The young generation `warm` is held to: two 4 MB semi-spaces. */
export const WARM_YOUNG_GENERATION_BYTES = 8 * 1024 * 1024;

/** V8's default growth step (flag --semi-space-growth-factor). */
const DEFAULT_GROWTH_FACTOR = 2;

/** Bytes V8 reports for its young generation (`new_space`: both semi-spaces), 0 when it reports none. */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** True when the process was started with an explicit young-generation size or growth step. */
export function youngGenerationSetByAdmin(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => /^--(?:(?:max|min)[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)\b/.test(arg));
}

// V8's flags are process-wide, so is this state.
let factor = DEFAULT_GROWTH_FACTOR;
let observer: PerformanceObserver | undefined;

function setFactor(wanted: number): void {
  if (wanted === factor) return;
  setFlagsFromString(`--semi-space-growth-factor=${wanted}`);
  factor = wanted;
}

/** Stops the young generation growing: it keeps its size now until `growYoungGenerationTo`. */
export function holdYoungGeneration(): void {
  if (youngGenerationSetByAdmin() || youngGenerationBytes() === 0) return;
  setFactor(1);
}

/**
 * Lets the young generation grow to `maxBytes` (a power of two in MB: V8 doubles it), then
 * holds it there; it never shrinks one already larger. Undone by `releaseYoungGeneration`.
 */
export function growYoungGenerationTo(maxBytes: number): void {
  if (youngGenerationSetByAdmin() || youngGenerationBytes() === 0) return;
  const step = () => {
    setFactor(youngGenerationBytes() < maxBytes ? DEFAULT_GROWTH_FACTOR : 1);
  };
  step();
  if (observer) return;
  observer = new PerformanceObserver(step);
  observer.observe({ entryTypes: ['gc'] });
}

/** V8's default growth again, and no more watching; idempotent. */
export function releaseYoungGeneration(): void {
  observer?.disconnect();
  observer = undefined;
  setFactor(DEFAULT_GROWTH_FACTOR);
}
