/** `check`'s cloud part: text lines naming task, jobs, chunks and key, and its exit code. */
import { redactSecrets } from '../secrets.js';
import type { CloudRoundResult } from './cloud-guard.js';

export function formatCloudReport(result: CloudRoundResult): string {
  const lines: string[] = [];
  for (const s of result.storages)
    if (s.status !== 'AVAILABLE')
      lines.push(`cloud storage ${s.storageId}: ${s.status}${s.problem ? ` (${s.problem})` : ''}; tasks ${s.taskIds.join(', ')} not checked`);
  for (const p of result.problems) {
    const chunks = p.chunks.map((c) => `job ${c.jobId} chunk ${c.chunk}`).join(', ');
    const what = p.kind === 'object_missing' ? `object "${p.key}" missing` : `context images missing under "${p.key}"`;
    lines.push(
      `task ${p.taskId}${p.taskName !== undefined ? ` (${p.taskName})` : ''}: ${what} in cloud storage ${p.storageId}, frame ${p.frame}; read by ${chunks || 'no job'}`,
    );
  }
  for (const l of result.listingProblems) lines.push(`cloud storage ${l.storageId}: listing "${l.dir}" failed: ${l.problem}`);
  const dirs = `${result.directoriesListed} director${result.directoriesListed === 1 ? 'y' : 'ies'}`;
  const head = `Cloud storage: ${result.expectedObjects} object(s) expected, ${result.problems.length} problem(s), ${result.calls} listing call(s) for ${dirs}${result.directoriesDeferred ? `, ${result.directoriesDeferred} deferred` : ''}`;
  return redactSecrets(`${[head, ...lines.map((l) => `  ${l}`)].join('\n')}\n`);
}

/** Exit code contribution of a cloud round: 1 for any problem, unavailable storage or unlisted directory. */
export function cloudExitCode(result: CloudRoundResult): 0 | 1 {
  return result.problems.length > 0 || result.storages.some((s) => s.status !== 'AVAILABLE') || result.directoriesDeferred > 0 ? 1 : 0;
}
