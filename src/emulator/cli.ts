/**
 * `cvat-warden emulate`: starts the demo deployment and prints where it listens and how
 * to log in. Resolves once listening; the caller owns the process (signals, close()).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../log.js';
import { OffsetClock } from './clock.js';
import { startEmulator, type Emulator } from './emulator.js';
import { DEMO_CREDENTIALS, demoDeployment } from './scenarios.js';
import { prepareDemoShare } from './share.js';

/** Defaults live in src/config/options.ts (`emulate --help`); callers pass every value. */
export interface EmulateArgs {
  port: number;
  host: string;
  /** A share laid out like CVAT's sample share; when absent or empty, a copy of the sample (or a synthetic stand-in) is made. */
  shareDir?: string;
  version: string;
  buildTimeMs: number;
  workers: number;
}

function isEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch {
    return true;
  }
}

export async function runEmulateCommand(args: EmulateArgs, logger: Pick<Logger, 'info'>): Promise<Emulator> {
  let shareDir = args.shareDir;
  let source = 'given';
  if (!shareDir || isEmptyDir(shareDir)) {
    shareDir = shareDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cvat-warden-share-'));
    const prepared = await prepareDemoShare(shareDir);
    source = prepared.source;
  }
  const demo = demoDeployment(path.resolve(shareDir));
  const emulator = await startEmulator({
    ...demo,
    host: args.host,
    port: args.port,
    version: args.version,
    buildTimeMs: args.buildTimeMs,
    chunkWorkers: args.workers,
    serverWaitMs: 50_000,
    clock: new OffsetClock(),
  });
  logger.info(
    { url: emulator.url, version: emulator.features.version, shareDir: demo.shareDir, shareSource: source, tasks: demo.tasks.length },
    'CVAT emulator listening',
  );
  const lines = [
    `CVAT emulator (${emulator.features.version}) listening on ${emulator.url}`,
    `  share:        ${demo.shareDir} (${source})`,
    `  login:        ${DEMO_CREDENTIALS.username} / ${DEMO_CREDENTIALS.password}`,
    `  access token: Authorization: Bearer ${DEMO_CREDENTIALS.accessToken}`,
    `  state:        ${emulator.url}/__emulator/state`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  return emulator;
}
