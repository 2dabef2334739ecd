/**
 * Wires the warming controller (adaptive.ts) to a warm engine: engine samples in, the
 * limit and the pacing pause out. One place, so `warm` and `run` warm alike.
 */
import type { WarmSettings } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { WarmEngine, WarmEngineOptions } from '../warm/engine.js';
import { AdaptiveConcurrency } from './adaptive.js';

export interface WarmControl {
  controller: AdaptiveConcurrency;
  /** Spread into the engine's options: its starting concurrency, samples and pacing. */
  engineOptions: Required<Pick<WarmEngineOptions, 'concurrency' | 'onSample' | 'pacingMs'>>;
  /** Lets the controller set the engine's concurrency; logs each change. Returns an unsubscribe function. */
  attach(engine: Pick<WarmEngine, 'setConcurrency'>, logger: Logger): () => void;
}

export function createWarmControl(
  settings: Pick<WarmSettings, 'concurrency' | 'chunkWorkers' | 'coldThresholdMs'>,
  deps: { metrics?: Metrics; clock?: { now(): number } } = {},
): WarmControl {
  const controller = new AdaptiveConcurrency({
    max: settings.concurrency,
    workers: settings.chunkWorkers,
    coldThresholdMs: settings.coldThresholdMs,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  return {
    controller,
    engineOptions: {
      concurrency: controller.limit,
      onSample: (s) => controller.record({ latencyMs: s.latencyMs, status: s.status ?? 'network', chunk: s.chunk, inFlight: s.inFlight }),
      pacingMs: () => controller.pauseMs,
    },
    attach(engine, logger) {
      return controller.onChange((state) => {
        engine.setConcurrency(state.limit);
        logger.info({ limit: state.limit, pauseMs: state.pauseMs, reason: state.reason }, 'warm concurrency changed');
      });
    },
  };
}
