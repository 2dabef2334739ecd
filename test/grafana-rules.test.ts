/**
 * The Prometheus alerting rules in grafana/alerts are code: promtool must accept and
 * unit-test them, every alert follows the monitoring-mixins conventions (severity,
 * summary, description, runbook_url with an anchor that exists), every alert has a
 * firing and a quiet promtool test case, and every metric they use is exported.
 *
 * promtool comes from scripts/install-prometheus.sh. Without it the promtool cases are
 * skipped with a warning, unless CI is set, in which case they fail.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exportedMetricNames } from './support/metric-names.js';
import { itWithPromtool, runPromtool } from './support/promtool.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ALERTS_DIR = join(ROOT, 'grafana', 'alerts');
const RULES_FILE = 'cvat-warden-rules.yml';
const RULES_TEST_FILE = 'cvat-warden-rules.test.yml';
const RUNBOOK_FILE = join(ROOT, 'grafana', 'runbook.md');
const RUNBOOK_URL = 'https://github.com/cvat-warden/cvat-warden/blob/main/grafana/runbook.md';
const SEVERITIES = ['critical', 'warning'];

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: (AlertRule | { record: string; expr: string })[] }[];
}
interface ExpAlert {
  exp_labels?: Record<string, string>;
  exp_annotations?: Record<string, string>;
}
interface RuleTestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: ExpAlert[] | null }[] }[];
}

const itPromtool = itWithPromtool('grafana-rules');

// ---- metric names --------------------------------------------------------------

/** cvat_warden_* identifiers in any text (PromQL or a Go template holding PromQL). */
function wardenMetricNames(text: string): string[] {
  return [...new Set(text.match(/\bcvat_warden_[a-zA-Z0-9_:]*/g) ?? [])];
}

/** Metric names a PromQL expression selects: cvat_warden_* and `up`, outside string literals. */
function promqlMetricNames(expr: string): string[] {
  const code = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const names = new Set(wardenMetricNames(code));
  if (/(?<![\w:])up(?![\w:])/.test(code)) names.add('up');
  return [...names];
}

// ---- runbook anchors -----------------------------------------------------------

/** Anchors GitHub generates for Markdown headings, plus explicit id/name anchors. */
function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of markdown.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    anchors.add(
      heading!
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  for (const [, id] of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id!);
  return anchors;
}

// ---- the files -----------------------------------------------------------------

const rulesFile = parse(await readFile(join(ALERTS_DIR, RULES_FILE), 'utf8')) as RuleFile;
const testFile = parse(await readFile(join(ALERTS_DIR, RULES_TEST_FILE), 'utf8')) as RuleTestFile;
const runbook = await readFile(RUNBOOK_FILE, 'utf8');
const alerts = rulesFile.groups.flatMap((group) => group.rules).filter((rule): rule is AlertRule => 'alert' in rule);
const alertTests = testFile.tests.flatMap((t) => t.alert_rule_test ?? []);

describe('grafana/alerts/cvat-warden-rules.yml', () => {
  itPromtool('passes promtool check rules', async () => {
    const output = await runPromtool(['check', 'rules', RULES_FILE], ALERTS_DIR);
    expect(output).toContain('SUCCESS');
  });

  itPromtool('passes its promtool unit tests', async () => {
    const output = await runPromtool(['test', 'rules', RULES_TEST_FILE], ALERTS_DIR);
    expect(output).toContain('SUCCESS');
  });

  it('has cvat-warden groups with the expected alerts', () => {
    // One group per concern that merges on its own (cvat-warden-credentials: issue 8).
    expect(rulesFile.groups.map((group) => group.name)).toEqual(expect.arrayContaining(['cvat-warden', 'cvat-warden-credentials']));
    for (const group of rulesFile.groups) expect(group.name).toMatch(/^cvat-warden(-[a-z]+)*$/);
    expect(alerts.map((alert) => alert.alert)).toEqual(
      expect.arrayContaining([
        'CvatWardenShareFilesMissing',
        'CvatWardenShareUnavailable',
        'CvatWardenWarmingFailing',
        'CvatWardenWarmBacklogNotShrinking',
        'CvatWardenCvatUnreachable',
        'CvatWardenGuardScanStale',
        'CvatWardenDown',
        'CvatWardenCvatCredentialsRefused',
        'CvatWardenDeepModeFallback',
        'CvatWardenCacheWiped',
        'CvatWardenCacheOverBudget',
      ]),
    );
    expect(new Set(alerts.map((alert) => alert.alert)).size).toBe(alerts.length);
  });

  const anchors = markdownAnchors(runbook);
  for (const alert of alerts) {
    describe(alert.alert, () => {
      it('follows the naming, label and annotation conventions', () => {
        expect(alert.alert).toMatch(/^CvatWarden[A-Z][A-Za-z0-9]*$/);
        expect(alert.for, 'a `for:` duration').toMatch(/^(\d+[smhdwy])+$/);
        expect(SEVERITIES).toContain(alert.labels?.['severity']);
        const { summary, description, runbook_url: runbookUrl } = alert.annotations ?? {};
        expect(summary, 'summary').toBeTruthy();
        expect(summary).toMatch(/\.$/);
        expect(summary, 'summary is a static headline').not.toContain('{{');
        expect(description, 'description').toBeTruthy();
        expect(description, 'description is templated').toContain('{{');
        expect(runbookUrl).toBe(`${RUNBOOK_URL}#${alert.alert.toLowerCase()}`);
      });

      it('links to an anchor that exists in grafana/runbook.md', () => {
        const anchor = alert.annotations?.['runbook_url']?.split('#')[1] ?? '';
        expect([...anchors], `runbook.md needs a heading "## ${alert.alert}"`).toContain(anchor);
      });

      it('has a firing and a quiet promtool test case', () => {
        const cases = alertTests.filter((t) => t.alertname === alert.alert);
        const firing = cases.filter((t) => (t.exp_alerts ?? []).length > 0);
        const quiet = cases.filter((t) => (t.exp_alerts ?? []).length === 0);
        expect(firing.length, `a case where ${alert.alert} fires`).toBeGreaterThan(0);
        expect(quiet.length, `a case where ${alert.alert} stays quiet`).toBeGreaterThan(0);
        for (const expected of firing.flatMap((t) => t.exp_alerts ?? [])) {
          expect(expected.exp_labels?.['severity']).toBe(alert.labels?.['severity']);
          expect(Object.keys(expected.exp_annotations ?? {}).sort()).toEqual(Object.keys(alert.annotations ?? {}).sort());
        }
      });

      it('uses only metrics the service exports', async () => {
        const exported = await exportedMetricNames();
        exported.add('up'); // written by Prometheus for every scrape target
        const used = new Set([...promqlMetricNames(alert.expr), ...wardenMetricNames(Object.values(alert.annotations ?? {}).join('\n'))]);
        expect(used.size).toBeGreaterThan(0);
        for (const name of used) expect(exported, `${alert.alert} uses ${name}`).toContain(name);
      });
    });
  }

  it('has promtool cases that keep the files-missing alert firing through a warden outage and restarts', () => {
    const cases = testFile.tests.filter((t) => (t.alert_rule_test ?? []).some((a) => a.alertname === 'CvatWardenShareFilesMissing'));
    for (const situation of ['outage', 'same address', 'new address']) {
      const found = cases.find((t) => t.name?.includes(situation) && t.name.includes('keeps firing'));
      expect(found, `a CvatWardenShareFilesMissing case for "${situation}"`).toBeDefined();
      const firing = (found!.alert_rule_test ?? []).filter((a) => (a.exp_alerts ?? []).length > 0);
      expect(firing.length, 'firing at several times across the gap').toBeGreaterThanOrEqual(4);
    }
  });

  it('tests only alerts that exist', () => {
    const names = new Set(alerts.map((alert) => alert.alert));
    for (const t of alertTests) expect(names, `test for unknown alert ${t.alertname}`).toContain(t.alertname);
    expect(testFile.rule_files).toEqual([RULES_FILE]);
  });
});
