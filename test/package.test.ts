/**
 * What `npm pack` ships (issue 9): the CLI, LICENSE, the deployment files (deploy/), the
 * monitoring files with the runbook the alerts link to, and the JSON Schemas of the
 * `--json` outputs (schemas/); package.json names the repository the image, the OCI
 * labels and the runbook links point at. Runs the real `npm pack --dry-run --json`.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const execFileAsync = promisify(execFile);
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  license: string;
  version: string;
  files: string[];
  repository: { type: string; url: string };
};
const REPO = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('npm package', () => {
  it('names its repository, and the license file matches package.json', () => {
    expect(pkg.repository.type).toBe('git');
    expect(REPO).toMatch(/^https:\/\/github\.com\/[\w-]+\/cvat-warden$/);
    const license = readFileSync('LICENSE', 'utf8');
    expect(pkg.license).toBe('MIT');
    expect(license).toMatch(/^MIT License\n/);
    expect(license).toContain('Permission is hereby granted, free of charge');
  });

  it('ships the CLI, LICENSE, deploy/, grafana/ with the runbook, and schemas/', async () => {
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'grafana', 'deploy', 'schemas', 'LICENSE']));
    const { stdout } = await execFileAsync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { maxBuffer: 16 * 1024 * 1024 });
    const packed = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
    expect(packed, 'dist/cli.js (npm test builds first)').toContain('dist/cli.js');
    for (const file of [
      'LICENSE',
      'README.md',
      'package.json',
      'grafana/runbook.md',
      'grafana/alerts/cvat-warden-rules.yml',
      'grafana/dashboards/cvat-warden.json',
    ])
      expect(packed, file).toContain(file);
    const deploy = filesUnder('deploy');
    expect(deploy.length).toBeGreaterThan(10);
    for (const file of [...deploy, ...filesUnder('schemas')]) expect(packed, file).toContain(file);
    // Nothing from development leaks in.
    for (const path of packed) expect(path).not.toMatch(/^(test|src|bench|scripts|\.ci|node_modules)\//);
  });

  it('links every alert to the runbook in the repository it names, and the packed runbook has each anchor', () => {
    const rules = parse(readFileSync('grafana/alerts/cvat-warden-rules.yml', 'utf8')) as {
      groups: Array<{ rules: Array<{ alert?: string; annotations?: Record<string, string> }> }>;
    };
    const runbook = readFileSync('grafana/runbook.md', 'utf8');
    const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    expect(alerts.length).toBeGreaterThan(5);
    for (const rule of alerts) {
      const url = rule.annotations?.['runbook_url'] ?? '';
      expect(url).toBe(`${REPO}/blob/main/grafana/runbook.md#${rule.alert!.toLowerCase()}`);
      expect(runbook).toMatch(new RegExp(`^## ${rule.alert}$`, 'm'));
    }
  });
});
