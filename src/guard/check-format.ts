/**
 * Human-readable rendering of a CheckReport: one table row per problem task, then
 * warnings and the backup-risk summary. Long lists are cut and counted.
 */
import { describeJobs, formatExpiry, truncateList } from './shell/alerts.js';
import type { CheckReport } from './check.js';

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** `backupNote`: what CVAT's backups of share tasks are worth on the CVAT checked (backup/restorability.ts shareBackupNote). */
export function formatCheckReport(
  report: CheckReport,
  backupNote = 'CVAT backups of share tasks are restorable only from CVAT 2.52 on, and lack context images',
): string {
  const t = report.totals;
  const out: string[] = [];
  out.push(`Share ${report.shareDir} (${report.fsType}${report.network ? ', network filesystem' : ''})`);
  out.push(
    `${t.shareTasks} share task(s) of ${t.tasks}, ${t.filesExpected} expected file(s): ` +
      `${t.filesPresent} present, ${t.filesMissing} missing, ${t.filesMoved} moved, ${t.filesModified} modified` +
      `${t.statErrors ? `, ${t.statErrors} unreadable` : ''}${t.rejectedNames ? `, ${t.rejectedNames} rejected name(s)` : ''} ` +
      `(scan ${t.scanSeconds.toFixed(1)} s)`,
  );
  if (report.problems.length) {
    out.push('');
    out.push(
      table(
        ['TASK', 'NAME', 'MISSING', 'MOVED', 'MODIFIED', 'UNREADABLE', 'REJECTED', 'JOBS [CHUNKS]', 'EXPIRES', 'FIRST PATH'],
        report.problems.map((p) => [
          String(p.taskId),
          clip(p.taskName ?? '', 24),
          String(p.missing.length),
          String(p.moved.length),
          String(p.modified.length),
          String(p.unreadable.length),
          String(p.rejected.length),
          clip(describeJobs(p.jobs, 3, 6), 60),
          formatExpiry(p.expiresAt),
          clip(
            p.missing[0] ??
              p.moved[0]?.path ??
              p.modified[0] ??
              (p.unreadable[0] ? `${p.unreadable[0].path} (${p.unreadable[0].code})` : undefined) ??
              p.rejected[0]?.name ??
              '',
            50,
          ),
        ]),
      ),
    );
  } else {
    out.push('All expected share files are present, readable and unchanged.');
  }
  if (report.warnings.length) {
    out.push('');
    out.push(`Warnings (${report.warnings.length}):`);
    for (const w of report.warnings.slice(0, 10)) out.push(`  task ${w.taskId}: ${w.message}`);
    if (report.warnings.length > 10) out.push(`  … (+${report.warnings.length - 10} more)`);
  }
  if (report.skipped.length) {
    out.push('');
    out.push(
      `Not guarded: ${report.skipped.length} task(s) (${truncateList(
        report.skipped.map((s) => s.taskId),
        10,
      )})`,
    );
  }
  out.push('');
  const broken = report.backupRisk.tasks.filter((x) => x.broken).map((x) => x.taskId);
  out.push(
    `Backup risk: ${report.backupRisk.atRisk} share task(s) exist only as share files (${backupNote}); ` +
      `${report.backupRisk.broken} already broken${broken.length ? `: ${truncateList(broken, 10)}` : ''}.`,
  );
  out.push(report.ok ? 'Result: OK' : 'Result: PROBLEMS FOUND');
  return `${out.join('\n')}\n`;
}
