#!/usr/bin/env node
// Generates deploy/kubernetes/base/prometheusrule.yaml (a Prometheus Operator PrometheusRule)
// from grafana/alerts/cvat-warden-rules.yml, the one source of the alert rules, so the two
// can never drift apart. test/kubernetes.test.ts runs it with --check.
//
//   node scripts/generate-k8s-rules.mjs                  # rewrite the generated file
//   node scripts/generate-k8s-rules.mjs --check          # exit 1 if it is out of date
//   node scripts/generate-k8s-rules.mjs --runbook-base https://wiki.example.internal/cvat-warden-runbook
//                                                        # runbook_url links to your own copy of grafana/runbook.md
//   node scripts/generate-k8s-rules.mjs --format rules --runbook-base URL --out /etc/prometheus/rules/cvat-warden-rules.yml
//                                                        # the plain Prometheus rules file, with runbook links to your copy
//   options: --rules FILE (source), --out FILE (target, `-` for stdout), --format prometheusrule|rules
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNBOOK = 'https://github.com/cvat-warden/cvat-warden/blob/main/grafana/runbook.md';

const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    rules: { type: 'string', default: join(ROOT, 'grafana/alerts/cvat-warden-rules.yml') },
    out: { type: 'string', default: join(ROOT, 'deploy/kubernetes/base/prometheusrule.yaml') },
    'runbook-base': { type: 'string' },
    format: { type: 'string', default: 'prometheusrule' },
  },
});
if (!['prometheusrule', 'rules'].includes(values.format)) {
  console.error(`--format must be prometheusrule or rules, not ${values.format}`);
  process.exit(2);
}

const source = parse(readFileSync(values.rules, 'utf8'));
if (!Array.isArray(source?.groups) || source.groups.length === 0) {
  console.error(`${values.rules}: no rule groups`);
  process.exit(2);
}
const base = values['runbook-base'];
const groups = source.groups.map((group) => ({
  ...group,
  rules: group.rules.map((rule) => {
    const url = rule.annotations?.runbook_url;
    if (!base || typeof url !== 'string' || !url.startsWith(`${RUNBOOK}#`)) return rule;
    return { ...rule, annotations: { ...rule.annotations, runbook_url: `${base}${url.slice(RUNBOOK.length)}` } };
  }),
}));

const resource = {
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PrometheusRule',
  metadata: {
    name: 'cvat-warden',
    labels: { 'app.kubernetes.io/name': 'cvat-warden', 'app.kubernetes.io/component': 'warden', 'app.kubernetes.io/part-of': 'cvat' },
  },
  spec: { groups },
};
const from = relative(ROOT, values.rules) || values.rules;
const text =
  values.format === 'rules'
    ? [`# GENERATED from ${from} by scripts/generate-k8s-rules.mjs${base ? `, runbook links to ${base}` : ''}.`, stringify({ groups }, { lineWidth: 0 })].join('\n')
    : [
        `# GENERATED from ${from} by scripts/generate-k8s-rules.mjs: do not edit.`,
        '# Change the rules there, then run `npm run generate:k8s`.',
        '# Your Prometheus may select PrometheusRules by a label (kube-prometheus-stack: `release: <its release>`):',
        '# add it in an overlay.',
        stringify(resource, { lineWidth: 0 }),
      ].join('\n');

if (values.out === '-') process.stdout.write(text);
else if (values.check) {
  let current = '';
  try {
    current = readFileSync(values.out, 'utf8');
  } catch {}
  if (current !== text) {
    console.error(`${relative(ROOT, values.out)} is out of date with ${from}: run \`npm run generate:k8s\``);
    process.exit(1);
  }
  console.log(`${relative(ROOT, values.out)} is up to date`);
} else {
  writeFileSync(values.out, text);
  console.log(`wrote ${relative(ROOT, values.out)} from ${from}`);
}
