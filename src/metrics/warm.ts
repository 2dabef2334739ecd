/** The warmer: chunk requests, their durations, chunk states and freshness, concurrency. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CHUNK_OUTCOMES, CHUNK_STATES, QUALITIES } from '../domain.js';

/** Chunk build + transfer can take the 50 s server wait plus retries: buckets reach 120 s. */
const CHUNK_DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 50, 60, 90, 120];

export function warmMetrics(registry: Registry) {
  const chunkRequests = new Counter({
    name: 'cvat_warden_chunk_requests_total',
    help: 'Chunk requests sent to CVAT by the warmer, by quality and outcome.',
    labelNames: ['quality', 'outcome'] as const,
    registers: [registry],
  });
  for (const quality of QUALITIES) for (const outcome of CHUNK_OUTCOMES) chunkRequests.inc({ quality, outcome }, 0);

  const chunkRequestDuration = new Histogram({
    name: 'cvat_warden_chunk_request_duration_seconds',
    help: 'Time from sending a chunk request to the end of its response, by quality.',
    labelNames: ['quality'] as const,
    buckets: CHUNK_DURATION_BUCKETS,
    registers: [registry],
  });
  for (const quality of QUALITIES) chunkRequestDuration.zero({ quality });

  const chunks = new Gauge({
    name: 'cvat_warden_chunks',
    help: 'Chunks in scope of the warmer, by state (warm, pending, failed, stuck).',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  for (const state of CHUNK_STATES) chunks.set({ state }, 0);

  const chunksExpiringSoon = new Gauge({
    name: 'cvat_warden_chunks_expiring_soon',
    help: 'Warm chunks whose cached copy expires (24 h after it was built) within the next 4 hours; they are rebuilt once it has.',
    registers: [registry],
  });

  const oldestWarmChunkTimestamp = new Gauge({
    name: 'cvat_warden_oldest_warm_chunk_timestamp_seconds',
    help: 'Unix time at which the oldest confirmed-warm chunk in scope was built (0 when none).',
    registers: [registry],
  });

  const warmConcurrency = new Gauge({
    name: 'cvat_warden_warm_concurrency_limit',
    help: 'Current limit of concurrent chunk requests (lowered when annotators need the chunk workers).',
    registers: [registry],
  });

  const warmBackoffs = new Counter({
    name: 'cvat_warden_warm_backoffs_total',
    help: 'Times the warmer lowered its concurrency because CVAT latency or 429s rose.',
    registers: [registry],
  });

  const lastWarmPassTimestamp = new Gauge({
    name: 'cvat_warden_last_warm_pass_timestamp_seconds',
    help: 'Unix time at which the last complete warm pass ended.',
    registers: [registry],
  });

  return {
    chunkRequests,
    chunkRequestDuration,
    chunks,
    chunksExpiringSoon,
    oldestWarmChunkTimestamp,
    warmConcurrency,
    warmBackoffs,
    lastWarmPassTimestamp,
  };
}
