/**
 * kubectl (Debian's package, installed by scripts/install-kubectl.sh) for
 * `kubectl kustomize`, the real renderer of deploy/kubernetes. Missing → those cases skip
 * with a message, except on CI, where they must run and fail instead.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const execFileAsync = promisify(execFile);
const CI = Boolean(process.env['CI']) && !['0', 'false'].includes(String(process.env['CI']).toLowerCase());
export const KUBECTL_MISSING = 'kubectl is not on PATH: run scripts/install-kubectl.sh';

async function version(): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('kubectl', ['version', '--client']);
    return stdout.split('\n')[0];
  } catch {
    return undefined;
  }
}

export const kubectl = await version();

/** `it` that skips without kubectl (with a warning naming `suite`), unless on CI. */
export function itWithKubectl(suite: string): typeof it {
  if (!kubectl && !CI) console.warn(`[${suite}] ${KUBECTL_MISSING}; skipping the kustomize cases (set CI=1 to fail instead).`);
  return it.skipIf(!kubectl && !CI) as typeof it;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

/** `kubectl kustomize DIR`, parsed: the objects it renders. */
export async function kustomize(dir: string): Promise<K8sObject[]> {
  if (!kubectl) throw new Error(KUBECTL_MISSING);
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync('kubectl', ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`kubectl kustomize ${dir} failed:\n${e.stderr ?? ''}\n${e.message}`, { cause: error });
  }
  return parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}
