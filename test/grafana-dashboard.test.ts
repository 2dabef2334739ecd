/**
 * Lints grafana/dashboards/cvat-warden.json the way dashboard-linter would (fixed uid,
 * no __inputs / ${DS_…}, a `datasource` variable, job/instance variables, a unit and a
 * description on every panel, $__rate_interval in every rate()), then hands every
 * PromQL expression to promtool as a recording rule so a real Prometheus parser
 * accepts it, and checks that every metric it reads is exported by the service.
 *
 * promtool comes from scripts/install-prometheus.sh. Without it the promtool case is
 * skipped with a warning, unless CI is set, in which case it fails.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { exportedMetricNames } from './support/metric-names.js';
import { itWithPromtool, runPromtool } from './support/promtool.js';
import { withTempDir } from './support/tmp.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DASHBOARD_FILE = join(ROOT, 'grafana', 'dashboards', 'cvat-warden.json');

/** Service metrics that deliberately have no panel. Add a name here only with a reason. */
const NOT_ON_DASHBOARD: ReadonlySet<string> = new Set<string>([
  // Scans are hourly: a rate() of this histogram is empty nearly all the time. The panels show
  // cvat_warden_share_last_scan_duration_seconds instead; the histogram stays for ad-hoc queries.
  'cvat_warden_share_scan_duration_seconds',
]);

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: { unit?: string }; overrides?: FieldOverride[] };
  transformations?: Array<{ id: string; options: { renameByName?: Record<string, string> } }>;
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}
interface Variable {
  name: string;
  type: string;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}
interface Annotation {
  name: string;
  builtIn?: number;
  enable?: boolean;
  expr?: string;
  datasource?: { type?: string; uid?: string };
  titleFormat?: string;
}
interface FieldOverride {
  matcher: { id: string; options: string };
  properties: Array<{ id: string; value: unknown }>;
}
interface Dashboard {
  id: unknown;
  annotations: { list: Annotation[] };
  uid: string;
  title: string;
  __inputs?: unknown;
  __requires?: unknown;
  panels: Panel[];
  templating: { list: Variable[] };
}

const itPromtool = itWithPromtool('grafana-dashboard');

// ---- helpers -------------------------------------------------------------------

const raw = await readFile(DASHBOARD_FILE, 'utf8');
const dashboard = JSON.parse(raw) as Dashboard;

/** All panels, including those nested in collapsed rows. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}
const panels = allPanels(dashboard.panels);

interface Query {
  where: string;
  expr: string;
}
function variableQuery(variable: Variable): string | undefined {
  return typeof variable.query === 'string' ? variable.query : variable.query?.query;
}
/** Every PromQL expression: panel targets, and the series selector inside label_values(). */
const queries: Query[] = [
  ...panels.flatMap((panel) =>
    (panel.targets ?? []).flatMap((target) => (target.expr ? [{ where: `panel ${panel.id} "${panel.title}" ${target.refId ?? ''}`, expr: target.expr }] : [])),
  ),
  ...dashboard.templating.list.flatMap((variable) => {
    const match = variable.type === 'query' ? /^label_values\((.+),\s*\w+\)$/.exec(variableQuery(variable) ?? '') : null;
    return match ? [{ where: `variable ${variable.name}`, expr: match[1]! }] : [];
  }),
];

/** Prometheus annotation queries (alerts drawn on every graph). */
const annotationQueries: Query[] = dashboard.annotations.list.flatMap((a) => (a.expr ? [{ where: `annotation ${a.name}`, expr: a.expr }] : []));

const BUILTIN_VARIABLES: Record<string, string> = {
  __rate_interval: '5m',
  __interval: '1m',
  __range: '1h',
  __interval_ms: '60000',
  __range_s: '3600',
  __range_ms: '3600000',
};
/** Replaces Grafana variables ($x, ${x}, ${x:fmt}, [[x]]) the way Grafana would at query time. */
function substituteVariables(expr: string): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]/g, (_, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    if (name.startsWith('__')) {
      const value = BUILTIN_VARIABLES[name];
      if (value === undefined) throw new Error(`no test value for Grafana variable $${name}`);
      return value;
    }
    if (!dashboard.templating.list.some((variable) => variable.name === name)) throw new Error(`undefined dashboard variable $${name}`);
    return '.*'; // user variables are only used inside =~"…" matchers
  });
}

/** Call arguments of every `fn(` in expr, with balanced parentheses. */
function callArguments(expr: string, fn: RegExp): string[] {
  const out: string[] = [];
  for (const match of expr.matchAll(fn)) {
    let depth = 0;
    const start = match.index + match[0].length;
    for (let i = start - 1; i < expr.length; i++) {
      if (expr[i] === '(') depth++;
      else if (expr[i] === ')' && --depth === 0) {
        out.push(expr.slice(start, i));
        break;
      }
    }
  }
  return out;
}

/** Metric names a PromQL expression selects: cvat_warden_*, prom-client's standard process_* / nodejs_*, and `up`, outside string literals. */
function promqlMetricNames(expr: string): string[] {
  const code = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const names = new Set(code.match(/\b(?:cvat_warden|process|nodejs)_[a-zA-Z0-9_:]*/g) ?? []);
  if (/(?<![\w:])up(?![\w:])/.test(code)) names.add('up');
  return [...names];
}
const baseName = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

// ---- tests ---------------------------------------------------------------------

describe('grafana/dashboards/cvat-warden.json', () => {
  it('is provisionable: fixed uid, id null, no __inputs or ${DS_…}', () => {
    expect(dashboard.uid).toBe('cvat-warden');
    expect(dashboard.uid.length).toBeLessThanOrEqual(40);
    expect(dashboard.id).toBeNull();
    expect(dashboard.title).toBeTruthy();
    expect(dashboard).not.toHaveProperty('__inputs');
    expect(dashboard).not.toHaveProperty('__requires');
    expect(raw).not.toContain('${DS_');
  });

  it('has datasource, job and instance variables', () => {
    const byName = new Map(dashboard.templating.list.map((variable) => [variable.name, variable]));
    expect(byName.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const [name, label] of [
      ['job', 'job'],
      ['instance', 'instance'],
    ] as const) {
      const variable = byName.get(name);
      expect(variable, `$${name} variable`).toMatchObject({ type: 'query', datasource: { uid: '${datasource}' } });
      expect(variableQuery(variable!)).toMatch(new RegExp(`^label_values\\(cvat_warden_build_info(\\{.*\\})?, ${label}\\)$`));
    }
  });

  it('queries Prometheus only through ${datasource}', () => {
    for (const panel of panels.filter((p) => p.targets?.length)) {
      expect(panel.datasource, `panel ${panel.id} "${panel.title}"`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const target of panel.targets ?? []) {
        if (target.datasource) expect(target.datasource, `panel ${panel.id} ${target.refId}`).toEqual(panel.datasource);
      }
    }
  });

  it('gives every panel a description and a unit', () => {
    const dataPanels = panels.filter((panel) => panel.type !== 'row' && panel.type !== 'text');
    expect(dataPanels.length).toBeGreaterThan(10);
    for (const panel of dataPanels) {
      expect(panel.description?.trim(), `panel ${panel.id} "${panel.title}" description`).toBeTruthy();
      expect(panel.fieldConfig?.defaults?.unit, `panel ${panel.id} "${panel.title}" unit`).toBeTruthy();
    }
  });

  it('has unique panel ids and a grid position for each panel', () => {
    expect(new Set(panels.map((panel) => panel.id)).size).toBe(panels.length);
    for (const panel of panels) expect(panel.gridPos, `panel ${panel.id}`).toBeDefined();
  });

  it('uses $__rate_interval in every rate(), irate() and increase()', () => {
    let checked = 0;
    for (const { where, expr } of queries) {
      for (const argument of callArguments(expr, /\b(?:rate|irate|increase)\s*\(/g)) {
        checked++;
        expect(argument, `${where}: ${expr}`).toMatch(/\[\$__rate_interval\]\s*$/);
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('reads only metrics the service exports, and shows every service metric', async () => {
    const exported = await exportedMetricNames(true);
    exported.add('up'); // written by Prometheus for every scrape target
    const used = new Set<string>();
    for (const { where, expr } of queries) {
      const names = promqlMetricNames(expr);
      expect(names.length, `${where} reads no cvat-warden metric: ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        expect(exported, `${where} reads ${name}, which the service does not export`).toContain(name);
        used.add(baseName(name));
      }
    }
    for (const name of await exportedMetricNames(false)) {
      if (NOT_ON_DASHBOARD.has(baseName(name))) continue;
      expect(used, `${baseName(name)} is exported but on no panel: add one, or list it in NOT_ON_DASHBOARD`).toContain(baseName(name));
    }
  });

  it('lets several jobs be selected at once', () => {
    const job = dashboard.templating.list.find((variable) => variable.name === 'job')!;
    expect(job).toMatchObject({ multi: true, includeAll: true, allValue: '.*' });
    // A multi-value variable only works inside a regex matcher.
    for (const { where, expr } of queries) expect(expr, where).not.toMatch(/job\s*=\s*"\$job"/);
  });

  it('draws firing cvat-warden alerts on the graphs', () => {
    const alerts = dashboard.annotations.list.find((a) => a.expr?.startsWith('ALERTS{'));
    expect(alerts, 'an annotation over ALERTS').toBeDefined();
    expect(alerts).toMatchObject({ enable: true, datasource: { type: 'prometheus', uid: '${datasource}' } });
    expect(alerts!.expr).toContain('alertname=~"CvatWarden.*"');
    expect(alerts!.expr).toContain('alertstate="firing"');
    expect(alerts!.titleFormat).toContain('{{alertname}}');
  });

  it('names the tasks with share problems and links each to its page in CVAT', () => {
    const table = panels.find((p) => p.type === 'table' && (p.targets ?? []).some((t) => t.expr?.includes('cvat_warden_task_share_files_missing')))!;
    const expr = table.targets![0]!.expr!;
    // The name comes from the info gauge; tasks whose name is not known yet still show.
    expect(expr).toMatch(/\* on \(job, instance, task_id\) group_left \(task_name\) cvat_warden_task_info\{/);
    expect(expr).toMatch(/\) or \(cvat_warden_task_share_files_missing\{/);
    const renamed = table.transformations?.find((t) => t.id === 'organize')?.options.renameByName ?? {};
    expect(renamed).toMatchObject({ task_id: 'Task', task_name: 'Name' });
    const cvatUrl = dashboard.templating.list.find((variable) => variable.name === 'cvat_url');
    expect(cvatUrl?.type).toBe('textbox');
    for (const column of ['Task', 'Name']) {
      const links = table.fieldConfig?.overrides?.find((o) => o.matcher.options === column)?.properties.find((p) => p.id === 'links')?.value as
        Array<{ url: string }> | undefined;
      expect(links?.[0]?.url, `${column} links to the task page`).toBe('${cvat_url}/tasks/${__data.fields.task_id}');
    }
  });

  it("shows the last reconcile scan's duration and age, not a rate of an hourly event", () => {
    const scan = panels.find((p) => p.type === 'stat' && (p.targets ?? []).some((t) => t.expr?.includes('cvat_warden_share_last_scan_duration_seconds')));
    expect(scan, 'a stat panel with the last scan').toBeDefined();
    const exprs = (scan!.targets ?? []).map((t) => t.expr ?? '');
    expect(
      exprs.some((e) => /^time\(\) - \(cvat_warden_share_last_scan_timestamp_seconds\{/.test(e)),
      'its age',
    ).toBe(true);
    expect(scan!.fieldConfig?.defaults?.unit).toBe('s');
    for (const { where, expr } of queries) expect(expr, where).not.toMatch(/rate\(cvat_warden_share_scan_duration_seconds/);
  });

  itPromtool('has PromQL that promtool accepts', async () => {
    const rules = [...queries, ...annotationQueries].map(({ where, expr }, i) => ({
      record: `dashboard_query_${i}`,
      expr: substituteVariables(expr),
      labels: { where },
    }));
    expect(rules.length).toBeGreaterThan(10);
    await withTempDir('cvat-warden-dashboard-', async (dir) => {
      const file = join(dir, 'dashboard-queries.yml');
      await writeFile(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const output = await runPromtool(['check', 'rules', file]);
      expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    });
  });
});
