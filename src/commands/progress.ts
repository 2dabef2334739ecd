/**
 * Progress while warming: a one-line bar on stderr when it is a terminal (log lines are
 * written above it, see `StatusLine`), otherwise a pino line every few seconds (for
 * docker logs and CI). The bar fits the terminal's width, read at every redraw (a resize
 * takes effect at once): past it the least useful fields go first, then the bar narrows —
 * a line that wrapped would leave a copy of itself on screen at every redraw.
 */
import { statusLineOf, type Logger, type TerminalStream } from '../log.js';
import type { WarmProgress } from '../warm/engine.js';

export interface ProgressReporter {
  update(progress: WarmProgress): void;
  done(): void;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

export function createProgressReporter(logger: Logger, stream: TerminalStream = process.stderr, now: () => number = () => performance.now()): ProgressReporter {
  const started = now();
  let last = 0;
  const line = (p: WarmProgress) => {
    const done = p.warm + p.fresh + p.failed + p.stuck;
    const elapsed = (now() - started) / 1000;
    const rate = p.warm / Math.max(elapsed, 0.001);
    const eta = rate > 0 ? (p.total - done) / rate : Infinity;
    return { done, rate, eta, elapsed };
  };
  if (stream.isTTY) {
    const bar = statusLineOf(stream);
    return {
      update(p) {
        const t = now();
        if (t - last < 100 && p.warm + p.fresh + p.failed + p.stuck < p.total) return;
        last = t;
        const { done, rate, eta } = line(p);
        bar.show(progressLine(p, { done, rate, eta }, bar.columns));
      },
      done() {
        bar.finish();
      },
    };
  }
  return {
    update(p) {
      const t = now();
      if (t - last < 5000) return;
      last = t;
      const { done, rate, eta } = line(p);
      logger.info(
        {
          done,
          total: p.total,
          warmed: p.warm,
          fresh: p.fresh,
          failed: p.failed,
          stuck: p.stuck,
          chunksPerSecond: Number(rate.toFixed(2)),
          etaSeconds: Number.isFinite(eta) ? Math.round(eta) : null,
        },
        'warming',
      );
    },
    done() {},
  };
}

/** Widest bar; narrower when the terminal is. */
const BAR_WIDTH = 24;
const MIN_BAR_WIDTH = 6;

/**
 * The bar's text for a terminal `columns` wide (undefined: not known, the full line).
 * Fields are dropped lowest priority first — rate, fresh, stuck, warmed, failed, eta —
 * and the count `done/total` always stays; the line is never longer than columns - 1
 * (writing the last column makes some terminals wrap).
 */
export function progressLine(p: WarmProgress, stats: { done: number; rate: number; eta: number }, columns: number | undefined): string {
  const fields = [
    { text: `${stats.done}/${p.total}`, keep: 0 },
    { text: `warmed ${p.warm}`, keep: 3 },
    { text: `fresh ${p.fresh}`, keep: 5 },
    { text: `failed ${p.failed}`, keep: 2 },
    { text: `stuck ${p.stuck}`, keep: 4 },
    { text: `${stats.rate.toFixed(1)}/s`, keep: 6 },
    { text: `eta ${formatDuration(stats.eta)}`, keep: 1 },
  ];
  const max = columns && columns > 1 ? columns - 1 : Infinity;
  const join = (shown: typeof fields) => shown.map((f) => f.text).join(' · ');
  let shown = fields;
  // The bar needs its brackets, MIN_BAR_WIDTH cells and a space.
  while (shown.length > 1 && join(shown).length + MIN_BAR_WIDTH + 3 > max) {
    const drop = Math.max(...shown.map((f) => f.keep));
    shown = shown.filter((f) => f.keep !== drop);
  }
  const text = join(shown);
  const width = Math.min(BAR_WIDTH, max - text.length - 3);
  if (width < MIN_BAR_WIDTH) return text.slice(0, max);
  const filled = p.total > 0 ? Math.round((stats.done / p.total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`;
}
