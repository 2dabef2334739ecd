/**
 * Progress while warming: a one-line bar on stderr when it is a terminal (log lines are
 * written above it, see `StatusLine`), otherwise a pino line every few seconds (for
 * docker logs and CI).
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
        const width = 24;
        const filled = p.total > 0 ? Math.round((done / p.total) * width) : width;
        bar.show(
          `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${p.total} · warmed ${p.warm} · fresh ${p.fresh} · failed ${p.failed} · stuck ${p.stuck} · ${rate.toFixed(1)}/s · eta ${formatDuration(eta)}`,
        );
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
