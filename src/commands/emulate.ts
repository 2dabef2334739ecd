/** `cvat-warden emulate`: the bundled CVAT emulator with the demo deployment, until Ctrl-C. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandConfig } from '../config/index.js';
import { runEmulateCommand } from '../emulator/cli.js';
import type { CommandContext } from './context.js';

export async function runEmulate(config: CommandConfig, context: CommandContext): Promise<number> {
  // Without --share-dir the sample share is copied into a temp dir that goes away on exit.
  const ownShare = config.shareDir ? undefined : mkdtempSync(join(tmpdir(), 'cvat-warden-share-'));
  try {
    return await serve(config, context, config.shareDir ?? ownShare!);
  } finally {
    if (ownShare) rmSync(ownShare, { recursive: true, force: true });
  }
}

async function serve(config: CommandConfig, context: CommandContext, shareDir: string): Promise<number> {
  const emulator = await runEmulateCommand(
    {
      host: config.emulator.host,
      port: config.emulator.port,
      version: config.emulator.version,
      buildTimeMs: config.emulator.buildTimeMs,
      workers: config.emulator.workers,
      shareDir,
    },
    context.logger,
  );
  await new Promise<void>((resolve) => {
    if (context.signal.aborted) resolve();
    context.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await emulator.close();
  return 0;
}
