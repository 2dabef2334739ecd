/**
 * `cvat-warden warm`: one pass over the scope — inventory, plan, skip what the ledger
 * confirms fresh, warm the rest — then a summary. Exit 0 when everything is warm,
 * 1 when chunks failed/stuck or tasks could not be planned, 130 when stopped by a signal
 * (its stop steps run through the CLI's shutdown coordinator: drain, flush, close).
 */
import { setFlagsFromString } from 'node:v8';
import type { CommandConfig } from '../config/index.js';
import type { CvatClient } from '../cvat/client.js';
import type { CvatFeatures } from '../cvat/features.js';
import { EXIT } from '../errors.js';
import { formatInventoryIssues } from './shared.js';
import { collectTaskRecords, type InventoryIssue } from '../cvat/inventory.js';
import { planRequests, summarizePlan } from '../plan/planner.js';
import type { PlanOptions, PlanTask } from '../plan/types.js';
import { WarmEngine, type WarmResult } from '../warm/engine.js';
import { CloudGate } from '../warm/cloud-gate.js';
import { planRecord } from '../warm/freshness.js';
import { Ledger } from '../warm/ledger.js';
import { setCvatInfo } from '../metrics.js';
import { createWarmControl } from '../daemon/warm-control.js';
import { createClient, type CommandContext } from './context.js';
import { writeCommandJson } from './json-output.js';
import { createProgressReporter } from './progress.js';

/** Typical cold build time of one chunk (CVAT PR #7081: ~1.2 s for a 36-image chunk); only for estimates. */
const ESTIMATED_SECONDS_PER_CHUNK = 1.5;

/**
 * A warm pass allocates a little per chunk and keeps little: the live heap stays near
 * 20 MB at 100,000 chunks, but V8's default growth lets it float to 80+ MB between major
 * GCs (peak RSS 172 MB). Growing the old generation by 10 % instead of V8's default
 * factor held the same run to 128 MB at the same CPU time (bench/scale.mjs, warm part).
 * Process-wide, which is right for a one-shot command.
 */
const HEAP_GROWING_PERCENT = 10;

export async function runWarm(config: CommandConfig, context: CommandContext): Promise<number> {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const { logger, metrics, shutdown } = context;
  const signal = shutdown.signal;
  const client = createClient(config.cvat, context);
  const ledger = await Ledger.open(config.stateDir, { logger });
  // A stop lets in-flight chunk requests finish; the deadline cancels them.
  const hard = new AbortController();
  let warming: Promise<unknown> = Promise.resolve();
  shutdown.onShutdown('drain warming', async (deadline) => {
    const cut = () => hard.abort();
    if (deadline.aborted) cut();
    deadline.addEventListener('abort', cut, { once: true });
    await warming.catch(() => undefined);
    deadline.removeEventListener('abort', cut);
  });
  shutdown.onShutdown('flush the ledger', () => ledger.close());
  shutdown.onShutdown('close the CVAT client', () => client.close());
  try {
    const features = await client.features(signal);
    setCvatInfo(metrics, features.version.raw);
    logger.info({ cvat: client.baseUrl, version: features.version.raw, indexChunks: features.indexChunks, range: features.rangeRequests }, 'connected to CVAT');
    const scope = await planScope({ config, context, client, ledger, features });
    const planOptions: PlanOptions = { ...config.warm, indexChunks: features.indexChunks, emptyPreviews: features.emptyPreviews };
    const plan = summarizePlan(scope.tasks, planOptions);
    const cvat = { url: client.baseUrl, version: features.version.raw };
    const problems = scope.issues.filter((i) => i.severity === 'problem');
    if (config.dryRun) {
      reportDryRun(config, context, { cvat, plan, scope, planOptions, ledger });
      return problems.length ? EXIT.problems : EXIT.ok;
    }
    const engine = createEngine({ config, context, client, ledger, features }, scope);
    const progress = createProgressReporter(logger, context.stderr);
    logger.info({ tasks: plan.tasks, jobs: plan.jobs, requests: plan.requests }, 'warming');
    let result: WarmResult;
    try {
      const run = engine.run(planRequests(scope.tasks, planOptions), plan.requests, {
        signal: hard.signal,
        drain: signal,
        onProgress: (p) => progress.update(p),
      });
      warming = run;
      result = await run;
    } finally {
      progress.done();
    }
    metrics.lastWarmPassTimestamp.set(Date.now() / 1000);
    if (config.json) writeCommandJson(context.stdout, 'warm', { dryRun: false, cvat, plan, result, issues: scope.issues });
    else context.stdout.write(formatResult(result, scope.issues));
    if (result.aborted) return EXIT.interrupted;
    return result.failed + result.stuck > 0 || problems.length > 0 ? EXIT.problems : EXIT.ok;
  } finally {
    await ledger.close();
    await client.close();
  }
}

/** What one warm pass works with once CVAT has answered. */
interface WarmDeps {
  config: CommandConfig;
  context: CommandContext;
  client: CvatClient;
  ledger: Ledger;
  features: CvatFeatures;
}

/** The scope's tasks, planned; the problems met on the way; each cloud task's storage. */
interface ScopePlan {
  tasks: PlanTask[];
  issues: InventoryIssue[];
  /** Task → cloud storage (task `data_cloud_storage_id`, data meta `cloud_storage_id`; CVAT ≥ 2.44). */
  cloudStorageOf: Map<number, number>;
}

/** Lists the scope's tasks with their jobs and meta and plans each (dropping chunks CVAT rebuilt since). */
async function planScope({ config, context, client, ledger, features }: WarmDeps): Promise<ScopePlan> {
  const { logger } = context;
  const signal = context.shutdown.signal;
  const issues: InventoryIssue[] = [];
  const onIssue = (issue: InventoryIssue) => {
    issues.push(issue);
    if (issue.severity === 'problem') logger.warn({ taskId: issue.taskId, jobId: issue.jobId }, issue.message);
    else logger.info({ taskId: issue.taskId }, issue.message);
  };
  const tasks: PlanTask[] = [];
  const rewarmJobs: number[] = [];
  const cloudStorageOf = new Map<number, number>();
  const planning = {
    client,
    ledger,
    features,
    qualities: config.warm.qualities,
    contextImages: config.warm.contextImages,
    onIssue,
    syncDates: !config.dryRun,
    signal,
  };
  for await (const record of collectTaskRecords(client, config.scope, { features, withMeta: true, signal, onIssue })) {
    const storageId = record.meta?.cloud_storage_id ?? record.task.data_cloud_storage_id;
    if (typeof storageId === 'number') cloudStorageOf.set(record.task.id, storageId);
    const { task, moved } = await planRecord(record, planning);
    rewarmJobs.push(...moved);
    if (task) tasks.push(task);
  }
  if (rewarmJobs.length)
    logger.info({ jobs: rewarmJobs.slice(0, 50), count: rewarmJobs.length }, 'chunks of these jobs were rebuilt by CVAT since the last pass; re-warming them');
  return { tasks, issues, cloudStorageOf };
}

/** --dry-run: what would be requested, what the ledger already confirms, and a time estimate. */
function reportDryRun(
  config: CommandConfig,
  context: CommandContext,
  run: { cvat: { url: string; version: string }; plan: ReturnType<typeof summarizePlan>; scope: ScopePlan; planOptions: PlanOptions; ledger: Ledger },
): void {
  const { plan, scope, planOptions, ledger } = run;
  let fresh = 0;
  for (const request of planRequests(scope.tasks, planOptions)) if (ledger.isFresh(request.series, request.slot, config.warm.maxAgeMs)) fresh++;
  const estimateSeconds = ((plan.requests - fresh) * ESTIMATED_SECONDS_PER_CHUNK) / Math.min(config.warm.concurrency, config.warm.chunkWorkers);
  const report = { cvat: run.cvat, plan: { ...plan, alreadyFresh: fresh, estimatedSeconds: Math.round(estimateSeconds) }, issues: scope.issues };
  if (config.json) writeCommandJson(context.stdout, 'warm', { dryRun: true, ...report });
  else context.stdout.write(formatPlan(report));
}

/** The same controller as the service: every chunk worker while nobody else queues, one left the moment someone does. */
function createEngine({ config, context, client, ledger, features }: WarmDeps, scope: ScopePlan): WarmEngine {
  const control = createWarmControl(config.warm, { metrics: context.metrics });
  const engine = new WarmEngine({
    client,
    features,
    ledger,
    metrics: context.metrics,
    logger: context.logger,
    ...control.engineOptions,
    maxAgeMs: config.warm.maxAgeMs,
    assumedAgeMs: config.warm.maxAgeMs,
    coldThresholdMs: config.warm.coldThresholdMs,
    cloudGate: new CloudGate((taskId) => scope.cloudStorageOf.get(taskId)),
  });
  control.attach(engine, context.logger);
  return engine;
}

function formatPlan(report: {
  cvat: { url: string; version: string };
  plan: ReturnType<typeof summarizePlan> & { alreadyFresh: number; estimatedSeconds: number };
  issues: InventoryIssue[];
}): string {
  const { plan } = report;
  const kinds = Object.entries(plan.byKind)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lines = [
    `Plan for CVAT ${report.cvat.version} at ${report.cvat.url} (dry run: no chunk requested)`,
    `  tasks      ${plan.tasks}`,
    `  jobs       ${plan.jobs}`,
    `  requests   ${plan.requests} (${kinds || 'none'}); ${plan.byTier[0]} for jobs new or in progress`,
    `  fresh      ${plan.alreadyFresh} already confirmed warm in the ledger`,
    `  est. time  ~${formatSeconds(plan.estimatedSeconds)} (assuming ${ESTIMATED_SECONDS_PER_CHUNK} s per cold chunk; warm chunks return at once)`,
  ];
  return `${lines.join('\n')}\n${formatInventoryIssues(report.issues)}`;
}

function formatResult(result: WarmResult, issues: InventoryIssue[]): string {
  const lines = [
    `${result.aborted ? 'Interrupted' : 'Done'} in ${formatSeconds(result.durationMs / 1000)}: ${result.warm} warmed, ${result.fresh} already fresh, ${result.failed} failed, ${result.stuck} stuck (of ${result.total}).`,
  ];
  for (const f of result.failures.slice(0, 20)) lines.push(`  ${f.state}: task ${f.taskId} job ${f.jobId} ${f.kind} ${f.slot} (${f.quality}): ${f.reason}`);
  for (const b of result.cloudBlocked) {
    const storage =
      b.storageId !== undefined ? `cloud storage ${b.storageId}${b.resource !== undefined ? ` (bucket "${b.resource}")` : ''}` : `task ${b.taskIds.join(', ')}`;
    lines.push(`  skipped: ${storage}, task(s) ${b.taskIds.join(', ')}: ${b.skipped} request(s) not sent: ${b.reason}`);
  }
  const more = result.failures.length - 20 + result.moreFailures;
  if (more > 0) lines.push(`  … and ${more} more (use --json for the full list)`);
  return `${lines.join('\n')}\n${formatInventoryIssues(issues)}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}
