/**
 * `cvat-warden demo`: a first look without a CVAT. Starts the emulator over a copy of
 * CVAT's sample share, runs the service against it, waits until every chunk the UI reads
 * is warm, deletes one share file through the emulator and shows the guard catching it,
 * then prints where to look and stops.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type CommandConfig } from '../config/index.js';
import { WardenService } from '../daemon/service.js';
import { DEMO_CREDENTIALS, demoDeployment, prepareDemoShare, startEmulator, type Emulator } from '../emulator/index.js';
import type { CommandContext } from './context.js';
import { selfCommand, shellQuote } from './self-command.js';

const WAIT_MS = 120_000;

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, signal: AbortSignal, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (signal.aborted) throw new Error(`interrupted while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

function metric(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

type Say = (line?: string) => void;

export async function runDemo(config: CommandConfig, context: CommandContext): Promise<number> {
  const out: Say = (line = '') => context.stdout.write(`${line}\n`);
  const workDir = mkdtempSync(join(tmpdir(), 'cvat-warden-demo-'));
  const shareDir = config.shareDir ?? join(workDir, 'share');
  const prepared = await prepareDemoShare(shareDir);
  const demo = demoDeployment(shareDir);
  // Port 0 unless one was asked for: the demo must not trip over a real CVAT on 8080.
  const port = config.options.sources.port === '--port' ? config.emulator.port : 0;
  const emulator = await startEmulator({
    ...demo,
    host: config.emulator.host,
    port,
    buildTimeMs: config.emulator.buildTimeMs,
    chunkWorkers: config.emulator.workers,
  });
  let service: WardenService | undefined;
  try {
    out(`1. CVAT emulator (${emulator.features.version}) on ${emulator.url}, share ${shareDir} (${prepared.source} copy of CVAT's test share)`);
    out(
      `   ${emulator.state.uiChunkKeys().size} chunks the annotation UI would read are cold; each takes ${config.emulator.buildTimeMs} ms to build on ${config.emulator.workers} chunk workers.`,
    );
    service = new WardenService({
      config: demoRunConfig(config, emulator, shareDir, workDir),
      logger: context.logger,
      metrics: context.metrics,
      guard: { rootCheckIntervalMs: 1000 },
    });
    await service.start();
    out(`2. cvat-warden run is serving ${service.url}/metrics and ${service.url}/status`);
    await showWarming(emulator, out, context.signal);
    await showDeletionCaught(emulator, service, out, context.signal);
    showWhereToLook(out);
    return 0;
  } finally {
    await service?.close();
    await emulator.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** `cvat-warden run` against the emulator, with state in the demo's own temp dir. */
function demoRunConfig(config: CommandConfig, emulator: Emulator, shareDir: string, workDir: string): CommandConfig {
  return loadConfig(
    'run',
    [
      '--url',
      emulator.url,
      '--share-dir',
      shareDir,
      '--state-dir',
      join(workDir, 'state'),
      '--listen',
      '127.0.0.1:0',
      '--poll-interval',
      '2s',
      '--warm-completed',
      '--log-level',
      config.logLevel,
    ],
    { CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken },
  );
}

/** Step 3: wait until every chunk the UI reads is warm, showing progress by quarters. */
async function showWarming(emulator: Emulator, out: Say, signal: AbortSignal): Promise<void> {
  const started = Date.now();
  let lastShown = -1;
  await until(
    'warming',
    () => {
      const total = emulator.state.uiChunkKeys().size;
      const warm = total - emulator.state.coldUiChunkKeys().size;
      const quarter = Math.floor((4 * warm) / total);
      if (quarter !== lastShown) {
        out(`   warming… ${warm}/${total} UI chunks warm`);
        lastShown = quarter;
      }
      return warm === total ? true : undefined;
    },
    signal,
  );
  out(
    `3. Every chunk the UI reads is warm after ${((Date.now() - started) / 1000).toFixed(1)} s; builds: ${emulator.state.totalBuilds}, duplicates: ${emulator.state.duplicateBuilds().length}.`,
  );
}

/** Steps 4–5: delete one share file through the emulator and show the guard catching it. */
async function showDeletionCaught(emulator: Emulator, service: WardenService, out: Say, signal: AbortSignal): Promise<void> {
  await until(
    'the share guard',
    async () => {
      const text = await (await fetch(`${service.url}/metrics`)).text();
      return (metric(text, 'cvat_warden_share_files_expected') ?? 0) > 0 ? true : undefined;
    },
    signal,
  );
  const victim = 'images/image_2.jpg';
  const deletedAt = Date.now();
  const answer = await fetch(`${emulator.url}/__emulator/share/delete`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: victim }),
  });
  out(`4. Deleted ${victim} from the share (as someone tidying up the file server might): emulator answered ${answer.status}.`);
  const missing = await until(
    'the deletion to be caught',
    async () => {
      const text = await (await fetch(`${service.url}/metrics`)).text();
      const value = metric(text, 'cvat_warden_share_files_missing') ?? 0;
      return value > 0 ? value : undefined;
    },
    signal,
    30_000,
  );
  out(`5. Caught in ${Date.now() - deletedAt} ms: cvat_warden_share_files_missing ${missing}`);
  await showProblem(service, victim, out, signal);
}

/** The deleted file as /status lists it: which tasks, jobs and chunks it breaks. */
async function showProblem(service: WardenService, victim: string, out: Say, signal: AbortSignal): Promise<void> {
  // /status lists it once the move window has passed (a move within the share would be paired there).
  type Problem = { path: string; kind: string; tasks?: Array<{ taskId: number; jobs: Array<{ jobId: number; chunks: number[] }> }> };
  const problem = await until(
    'the problem in /status',
    async () => {
      const status = (await (await fetch(`${service.url}/status`)).json()) as { share?: { openProblems?: Problem[] } };
      return status.share?.openProblems?.find((p) => p.path === victim);
    },
    signal,
    10_000,
  );
  for (const task of problem.tasks ?? []) {
    out(
      `   ${problem.kind}: ${victim} → task ${task.taskId}, ${task.jobs.map((j) => `job ${j.jobId} chunk${j.chunks.length > 1 ? 's' : ''} ${j.chunks.join(',')}`).join('; ')}`,
    );
  }
  out(
    '   Those chunks still come from the cache; once it expires (24 h after they were built) CVAT will answer 500 for them. Restore the file to the same path.',
  );
}

function showWhereToLook(out: Say): void {
  out();
  out('Where to look on a real deployment:');
  out('  /metrics  Prometheus metrics (cvat_warden_*), scraped with deploy/prometheus-scrape.yml');
  out('  /status   JSON: tasks, jobs, chunk states, open share problems');
  out('  grafana/  dashboard, alert rules and runbook');
  for (const line of exploreByHand(selfCommand(), tmpdir())) out(line);
}

/** Commands to paste, no placeholders: the emulator on its default port over a share it fills, and the service against it. */
export function exploreByHand(self: string, tmp: string): string[] {
  const share = shellQuote(join(tmp, 'cvat-warden-demo-share'));
  const state = shellQuote(join(tmp, 'cvat-warden-demo-state'));
  return [
    'To explore by hand, paste these in two terminals:',
    `  ${self} emulate --share-dir ${share}`,
    `  CVAT_URL=http://127.0.0.1:8080 CVAT_ACCESS_TOKEN=${DEMO_CREDENTIALS.accessToken} ${self} run --share-dir ${share} --state-dir ${state}`,
  ];
}
