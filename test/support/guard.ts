/**
 * Shared fixtures for the guard tests: a temp copy of CVAT's own test share
 * (tests/mounted_file_share), tasks built over it, an event recorder, a log
 * recorder, metric readers, and `settled`, the barrier before a "nothing happened" assertion.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import type { DataMeta } from '../../src/cvat/shapes.js';
import { ShareGuard, type GuardAlert, type GuardJob, type GuardTask, type ShareGuardOptions } from '../../src/guard/index.js';
import { waitFor } from './wait.js';

export const SAMPLE_SHARE = path.resolve(process.cwd(), '../shared/cvat/v2.73.0/tests/mounted_file_share');

/** Whether the sample share is there; in CI its absence is a failure, elsewhere a skip. */
export function sampleShareAvailable(): boolean {
  const present = existsSync(SAMPLE_SHARE);
  if (!present) {
    const message = `sample share not found at ${SAMPLE_SHARE} (expected ../shared next to the repo)`;
    if (process.env['CI']) throw new Error(message);
    console.warn(`SKIP guard tests: ${message}`);
  }
  return present;
}

export interface ShareFixture {
  tmp: string;
  shareDir: string;
  stateDir: string;
  outside: string;
  cleanup: () => Promise<void>;
}

/** A temp dir with share/ (a copy of the sample share), state/ and outside/ (not in the share). */
export async function makeShare(): Promise<ShareFixture> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'guard-test-'));
  const shareDir = path.join(tmp, 'share');
  const stateDir = path.join(tmp, 'state');
  const outside = path.join(tmp, 'outside');
  await cp(SAMPLE_SHARE, shareDir, { recursive: true, preserveTimestamps: true });
  await mkdir(outside, { recursive: true });
  return { tmp, shareDir, stateDir, outside, cleanup: () => rm(tmp, { recursive: true, force: true }) };
}

/** A guard over the fixture's share and state as the guard tests build one: a local disk (ext4, no mountinfo), silent, fresh metrics; `options` add or override. */
export function guardOver(fx: Pick<ShareFixture, 'shareDir' | 'stateDir'>, options: Partial<ShareGuardOptions> = {}): ShareGuard {
  return new ShareGuard({ shareDir: fx.shareDir, stateDir: fx.stateDir, metrics: testMetrics(), logger: silentLogger(), fsTypeOverride: 'ext4', ...options });
}

export function meta(frames: Array<{ name: string; related_files?: number }>, extra: Partial<DataMeta> = {}): DataMeta {
  return {
    chunk_size: 2,
    size: frames.length,
    start_frame: 0,
    stop_frame: Math.max(0, frames.length - 1),
    frame_filter: '',
    frames: frames.map((f) => ({ width: 10, height: 10, related_files: 0, has_related_context: (f.related_files ?? 0) > 0, ...f })),
    deleted_frames: [],
    storage: 'share',
    ...extra,
  };
}

/** A share task of image frames with one annotation job over all of them (vault and restore tests). */
export function shareTask(taskId: number, names: string[]): GuardTask {
  return {
    taskId,
    storage: 'share',
    isVideo: false,
    dimension: '2d',
    meta: meta(names.map((name) => ({ name }))),
    jobs: [job(taskId * 10, 0, names.length - 1)],
  };
}

export function job(id: number, startFrame: number, stopFrame: number, chunkSize = 2, extra: Partial<GuardJob> = {}): GuardJob {
  return { id, type: 'annotation', startFrame, stopFrame, chunkSize, ...extra };
}

/** Tasks over the sample share: images (+GT, replica), 2D related, video, 3D Supervisely. */
export function sampleTasks(): GuardTask[] {
  const images = [0, 1, 2, 3, 4, 5].map((i) => ({ name: `images/image_${i}.jpg` }));
  return [
    {
      taskId: 1,
      taskName: 'images',
      storage: 'share',
      isVideo: false,
      dimension: '2d',
      meta: meta(images),
      jobs: [job(11, 0, 2), job(12, 3, 5), job(13, 0, 5, 1, { type: 'ground_truth', includedFrames: [4, 1] }), job(14, 0, 2, 2, { type: 'consensus_replica' })],
    },
    {
      taskId: 2,
      taskName: 'with related',
      storage: 'share',
      isVideo: false,
      dimension: '2d',
      meta: meta([
        { name: 'images/with_related/image_0.png', related_files: 3 },
        { name: 'images/with_related/image_1.png', related_files: 1 },
        { name: 'images/with_related/image_2.png', related_files: 3 },
        { name: 'images/with_related/image_3.png', related_files: 0 },
      ]),
      jobs: [job(21, 0, 3, 4)],
    },
    {
      taskId: 3,
      taskName: 'video',
      storage: 'share',
      isVideo: true,
      dimension: '2d',
      meta: meta([{ name: 'videos/video_1.mp4' }], { size: 20, stop_frame: 19, chunk_size: 5 }),
      jobs: [job(31, 0, 9, 5), job(32, 5, 19, 5)],
    },
    {
      taskId: 4,
      taskName: 'pcd',
      storage: 'share',
      isVideo: false,
      dimension: '3d',
      meta: meta([1, 2, 3].map((i) => ({ name: `pcd_with_related/pointcloud/00000${i}.pcd`, related_files: 1 }))),
      jobs: [job(41, 0, 2, 1)],
    },
  ];
}

export function recordAlerts(guard: ShareGuard): GuardAlert[] {
  const alerts: GuardAlert[] = [];
  guard.on('alert', (a) => alerts.push(a));
  return alerts;
}

export function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void raw.push(line) } });
  return { logger, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export function testMetrics(): Metrics {
  return createMetrics({ buildInfo: { version: 'test' } });
}

/** Value of a metric series from the registry text, or undefined. */
export async function metricValue(metrics: Metrics, name: string, labels = ''): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  const want = labels ? `${name}{${labels}}` : name;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (line.slice(0, sp) === want) return Number(line.slice(sp + 1));
  }
  return undefined;
}

export const fileAlerts = (alerts: GuardAlert[], kind: string) =>
  alerts.filter((a): a is Extract<GuardAlert, { path: string }> => a.kind === kind && 'path' in a);

type ScanResult = Awaited<ReturnType<ShareGuard['scan']>>;

/**
 * The barrier before a "nothing happened" assertion, instead of a fixed sleep: a
 * reconcile scan that starts now (it queues behind the watch batches already taken in
 * and compares every expected file with its baseline), then no file left inside its
 * move window. Whatever the guard would say about the share as it is now, it has said.
 */
export async function settled(guard: ShareGuard, { timeoutMs = 15_000 } = {}): Promise<ScanResult> {
  const reason = 'test-barrier';
  let result = await guard.scan(reason);
  if (result.reason !== reason) {
    // A scan was already running (it may have started before the change): the guard runs
    // one more, 'requested', when it ends; that one is the barrier.
    result = await new Promise<ScanResult>((resolve) => {
      const onScan = (next: ScanResult) => {
        if (next.reason !== 'requested') return;
        guard.off('scan', onScan);
        resolve(next);
      };
      guard.on('scan', onScan);
    });
  }
  await waitFor('no file inside its move window', () => guard.status().problems.pending === 0, { timeoutMs });
  return result;
}

/** The child-process guard of test/fixtures/guard-runner.mjs (usage there). */
export const GUARD_RUNNER = fileURLToPath(new URL('../fixtures/guard-runner.mjs', import.meta.url));

export interface GuardRunner {
  proc: ChildProcess;
  /** Its stdout, one JSON object a line: `{event: 'ready', …}`, `{event: 'alert', …}`, `{event: 'closed'}`. */
  events: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `command args` (node on GUARD_RUNNER, or a wrapper such as unshare that execs it) and collects its events. */
export function spawnGuardRunner(command: string, args: readonly string[]): GuardRunner {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Array<Record<string, unknown>> = [];
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (text: string) => {
    out += text;
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      events.push(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      out = out.slice(nl + 1);
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (text: string) => (err += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { proc, events, stderr: () => err, exited };
}
