/**
 * promtool (Debian's prometheus package, installed by scripts/install-prometheus.sh):
 * the real Prometheus parser for rules and dashboard queries. Missing → those cases skip
 * with a message, except on CI, where they must run and fail instead.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { it } from 'vitest';

const execFileAsync = promisify(execFile);
const CI = Boolean(process.env['CI']) && !['0', 'false'].includes(String(process.env['CI']).toLowerCase());
export const PROMTOOL_MISSING = 'promtool is not on PATH: run scripts/install-prometheus.sh';

async function version(): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await execFileAsync('promtool', ['--version']);
    return (stdout || stderr).split('\n')[0];
  } catch {
    return undefined;
  }
}

export const promtool = await version();

/** `it` that skips without promtool (with a warning naming `suite`), unless on CI. */
export function itWithPromtool(suite: string): typeof it {
  if (!promtool && !CI) console.warn(`[${suite}] ${PROMTOOL_MISSING}; skipping the promtool cases (set CI=1 to fail instead).`);
  return it.skipIf(!promtool && !CI) as typeof it;
}

/** Runs promtool; on failure the error carries its whole output. */
export async function runPromtool(args: string[], cwd?: string): Promise<string> {
  if (!promtool) throw new Error(PROMTOOL_MISSING);
  try {
    const { stdout, stderr } = await execFileAsync('promtool', args, cwd ? { cwd } : {});
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}\n${e.message}`, { cause: error });
  }
}
