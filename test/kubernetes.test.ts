/**
 * deploy/kubernetes as `kubectl kustomize` renders it (Debian's kubectl, installed by
 * scripts/install-kubectl.sh; the manifests keep to what kustomize 2.0 understands), held
 * to what running beside CVAT's Helm chart 2.73.0 (../shared/cvat/v2.73.0/helm-chart) needs;
 * the README's "Kubernetes" section — its Helm values snippet and its commands — is read
 * from README.md and checked against the chart's values.yaml and templates.
 */
import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { OPTIONS as TABLE, type OptionSpec } from '../src/config/options.js';
import { parseStoreUrl } from '../src/deep/store-url.js';
import { itWithKubectl, kustomize, type K8sObject } from './support/kubectl.js';
import { codeBlocks, readmeSection, shellCommands } from './support/readme.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';
import { useTempDir } from './support/tmp.js';

/** The options table, widened: these tests look up env names of any row. */
const OPTIONS: readonly OptionSpec[] = TABLE;

const execFileAsync = promisify(execFile);
const itKubectl = itWithKubectl('kubernetes');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
const SHARE = '/home/django/share';
const RELEASE = 'cvat';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- rendered YAML, checked field by field
interface Rendered {
  all: K8sObject[];
  deployment: Obj;
  pod: Obj;
  container: Obj;
  byKind: (kind: string) => Obj;
}

/** `kubectl kustomize` once per directory (twelve tests read the base); each caller gets its own copy to change. */
const renderings = new Map<string, Promise<K8sObject[]>>();

async function render(dir: string): Promise<Rendered> {
  let rendering = renderings.get(dir);
  if (!rendering) renderings.set(dir, (rendering = kustomize(dir)));
  const all = structuredClone(await rendering);
  const byKind = (kind: string): Obj => {
    const found = all.filter((o) => o.kind === kind);
    if (found.length !== 1) throw new Error(`${dir}: expected one ${kind}, got ${found.length}`);
    return found[0] as Obj;
  };
  const deployment = byKind('Deployment');
  const pod = deployment['spec'].template.spec;
  return { all, deployment, pod, container: pod.containers[0], byKind };
}

const env = (container: Obj): Record<string, string> => Object.fromEntries((container['env'] as Obj[]).map((e) => [e['name'], e['value']]));
const volume = (pod: Obj, name: string): Obj => (pod['volumes'] as Obj[]).find((v) => v['name'] === name)!;
const mountAt = (container: Obj, path: string): Obj | undefined => (container['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === path);
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

const k8sSection = readmeSection('Kubernetes');
const helmSnippet = codeBlocks(k8sSection, 'yaml')[0];
const k8sCommands = codeBlocks(k8sSection, 'sh').flatMap(shellCommands);

describe('deploy/kubernetes (kubectl kustomize)', () => {
  itKubectl('renders a Deployment, Service, state PVC, NetworkPolicy, ServiceMonitor and PrometheusRule, and no Secret', async () => {
    const { all } = await render('deploy/kubernetes');
    expect(all.map((o) => o.kind).sort()).toEqual(['Deployment', 'NetworkPolicy', 'PersistentVolumeClaim', 'PrometheusRule', 'Service', 'ServiceMonitor']);
    for (const o of all) expect(o.metadata.labels?.['app.kubernetes.io/name'], `${o.kind} label`).toBe('cvat-warden');
  });

  itKubectl('Deployment: one replica, Recreate, non-root with a read-only root filesystem, probes and resources', async () => {
    const { deployment, pod, container } = await render('deploy/kubernetes');
    expect(deployment['spec'].replicas).toBe(1);
    expect(deployment['spec'].strategy).toEqual({ type: 'Recreate' });
    expect(pod['securityContext'].runAsNonRoot).toBe(true);
    expect(pod['securityContext'].runAsUser).toBeGreaterThan(0);
    expect(container['securityContext']).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container['image']).toBe(`ghcr.io/cvat-warden/cvat-warden:${pkg.version}`);
    const port = (container['ports'] as Obj[]).find((p) => p['name'] === 'http')!;
    expect(env(container)['CVAT_WARDEN_LISTEN']).toBe(`0.0.0.0:${port['containerPort']}`);
    expect(container['livenessProbe'].httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container['readinessProbe'].httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container['resources'].requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container['resources'].limits.memory).toBeTruthy();
    // Read-only root: every directory the warden writes is a volume.
    for (const dir of [env(container)['CVAT_WARDEN_STATE_DIR']!, '/tmp']) expect(mountAt(container, dir), dir).toBeDefined();
    const known = new Set(OPTIONS.map((o) => o.env).filter(Boolean));
    for (const name of Object.keys(env(container))) expect(known, name).toContain(name);
  });

  itKubectl('mounts the share read-only from the RWX claim, and keeps its state on its own PVC', async () => {
    const { all, pod, container } = await render('deploy/kubernetes');
    const shareMount = mountAt(container, SHARE)!;
    expect(shareMount['readOnly']).toBe(true);
    expect(env(container)['CVAT_SHARE_DIR']).toBe(SHARE);
    const share = volume(pod, shareMount['name']);
    expect(share['persistentVolumeClaim']).toEqual({ claimName: 'cvat-share', readOnly: true });
    const state = volume(pod, mountAt(container, env(container)['CVAT_WARDEN_STATE_DIR']!)!['name']);
    const claim = all.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === state['persistentVolumeClaim']?.claimName) as Obj | undefined;
    expect(claim, 'the state PVC is rendered').toBeDefined();
    expect(claim!['metadata'].name).not.toBe('cvat-share');
    expect(claim!['spec'].accessModes).toEqual(['ReadWriteOnce']);
  });

  itKubectl('takes the token from the Secret that secret.example.yaml and the README create', async () => {
    const { pod, container } = await render('deploy/kubernetes');
    const tokenFile = env(container)['CVAT_ACCESS_TOKEN_FILE']!;
    const mount = (container['volumeMounts'] as Obj[]).find((m) => tokenFile.startsWith(`${m['mountPath']}/`))!;
    expect(mount['readOnly']).toBe(true);
    const secretName = volume(pod, mount['name'])['secret'].secretName;
    const key = relative(mount['mountPath'], tokenFile);
    const example = parse(await readFile('deploy/kubernetes/secret.example.yaml', 'utf8')) as Obj;
    expect(example['kind']).toBe('Secret');
    expect(example['metadata'].name).toBe(secretName);
    expect(example['stringData']).toHaveProperty(key);
    expect(k8sCommands).toContain(`kubectl -n ${RELEASE} create secret generic ${secretName} --from-file=${key}=./cvat-warden-token`);
    expect(k8sCommands).toContain(`kubectl -n ${RELEASE} apply -k deploy/kubernetes`);
    expect(env(container)).not.toHaveProperty('CVAT_ACCESS_TOKEN');
  });

  itKubectl('Service, ServiceMonitor and NetworkPolicy select the warden pod; the job label is what the rules expect', async () => {
    const { deployment, byKind } = await render('deploy/kubernetes');
    const podLabels = deployment['spec'].template.metadata.labels as Record<string, string>;
    const service = byKind('Service');
    expect(matches(service['spec'].selector, podLabels)).toBe(true);
    expect(service['spec'].publishNotReadyAddresses).toBe(true);
    const port = (service['spec'].ports as Obj[])[0]!;
    expect(port).toMatchObject({ name: 'http', port: 9464, targetPort: 'http' });
    const monitor = byKind('ServiceMonitor');
    expect(matches(monitor['spec'].selector.matchLabels, service['metadata'].labels)).toBe(true);
    expect(monitor['spec'].endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    // Prometheus Operator names the job after the Service; CvatWardenDown selects job="cvat-warden".
    const rules = await readFile('grafana/alerts/cvat-warden-rules.yml', 'utf8');
    expect(rules).toContain(`up{job="${service['metadata'].name}"}`);
    const policy = byKind('NetworkPolicy');
    expect(matches(policy['spec'].podSelector.matchLabels, podLabels)).toBe(true);
    expect(policy['spec'].policyTypes).toEqual(['Ingress', 'Egress']);
  });

  itKubectl('ships the PrometheusRule generated from grafana/alerts, up to date, and the check fails when it is stale', async () => {
    const { byKind } = await render('deploy/kubernetes');
    const source = parse(await readFile('grafana/alerts/cvat-warden-rules.yml', 'utf8')) as Obj;
    expect(byKind('PrometheusRule')['spec'].groups).toEqual(source['groups']);
    const { stdout } = await execFileAsync('node', ['scripts/generate-k8s-rules.mjs', '--check']);
    expect(stdout).toContain('up to date');
  });

  describe('generator', () => {
    const tmp = useTempDir('warden-k8s-rules-');
    it('refuses a stale file, and points runbook links at a configurable base', async () => {
      const rules = join(tmp.path, 'rules.yml');
      await writeFile(rules, (await readFile('grafana/alerts/cvat-warden-rules.yml', 'utf8')).replace('for: 5m', 'for: 6m'));
      const stale = await execFileAsync('node', ['scripts/generate-k8s-rules.mjs', '--check', '--rules', rules]).then(
        () => undefined,
        (error: unknown) => error as { code: number; stderr: string },
      );
      expect(stale?.code).toBe(1);
      expect(stale?.stderr).toMatch(/out of date .*npm run generate:k8s/);
      await copyFile('grafana/alerts/cvat-warden-rules.yml', rules);
      const { stdout } = await execFileAsync('node', [
        'scripts/generate-k8s-rules.mjs',
        '--rules',
        rules,
        '--out',
        '-',
        '--runbook-base',
        'https://wiki.internal/runbook',
      ]);
      const urls = [...stdout.matchAll(/runbook_url: (\S+)/g)].map((m) => m[1]);
      expect(urls.length).toBeGreaterThan(5);
      for (const url of urls) expect(url).toMatch(/^https:\/\/wiki\.internal\/runbook#cvatwarden[a-z]+$/);
      // The plain Prometheus rules file, for compose or any Prometheus without the Operator.
      const plain = await execFileAsync('node', [
        'scripts/generate-k8s-rules.mjs',
        '--format',
        'rules',
        '--out',
        '-',
        '--runbook-base',
        'https://wiki.internal/runbook',
      ]);
      const rulesOut = parse(plain.stdout) as Obj;
      expect(Object.keys(rulesOut)).toEqual(['groups']);
      expect(rulesOut['groups'].flatMap((g: Obj) => g['rules'].map((r: Obj) => r['annotations'].runbook_url))).toEqual(urls);
    });
  });

  itKubectl('vault overlay: the share writable for the warden, CVAT_WARDEN_VAULT inside it, nothing else changed', async () => {
    const base = await render('deploy/kubernetes');
    const vault = await render('deploy/kubernetes/overlays/vault');
    const mount = mountAt(vault.container, SHARE)!;
    expect(mount['readOnly']).toBe(false);
    expect(volume(vault.pod, mount['name'])['persistentVolumeClaim']).toEqual({ claimName: 'cvat-share', readOnly: false });
    expect(relative(SHARE, env(vault.container)['CVAT_WARDEN_VAULT']!)).toMatch(/^\.[\w-]+$/);
    const vaultOption = OPTIONS.find((o) => o.name === 'vault');
    if (vaultOption) expect(vaultOption.env).toBe('CVAT_WARDEN_VAULT');
    // Undo exactly those changes: the rest is the base.
    mount['readOnly'] = true;
    volume(vault.pod, mount['name'])['persistentVolumeClaim']['readOnly'] = true;
    vault.container['env'] = (vault.container['env'] as Obj[]).filter((e) => e['name'] !== 'CVAT_WARDEN_VAULT');
    expect(vault.all).toEqual(base.all);
    expect(mountAt(base.container, SHARE)!['readOnly']).toBe(true);
  });
});

/**
 * The JSON Schemas of the Kubernetes API (kubernetes-models) and of the Prometheus
 * operator's CRDs (@kubernetes-models/prometheus-operator), for each kind we ship.
 */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Deployment,
  Service,
  PersistentVolumeClaim,
  NetworkPolicy,
  ServiceMonitor,
  PrometheusRule,
};

function schemaErrors(object: K8sObject): string | undefined {
  const Model = MODELS[object.kind];
  if (!Model) return `no schema for ${object.kind}`;
  try {
    new Model(object as never).validate();
    return undefined;
  } catch (error) {
    return `${object.kind}/${object.metadata.name}: ${(error as Error).message}`;
  }
}

describe('deploy/kubernetes against the Kubernetes and Prometheus-operator schemas', () => {
  for (const dir of [
    'deploy/kubernetes',
    'deploy/kubernetes/overlays/vault',
    'deploy/kubernetes/overlays/kube-prometheus-stack',
    'deploy/kubernetes/overlays/deep',
  ]) {
    itKubectl(`${dir}: every rendered object validates`, async () => {
      const { all } = await render(dir);
      expect(all.length).toBeGreaterThan(5);
      expect(all.map(schemaErrors).filter(Boolean)).toEqual([]);
    });
  }

  itKubectl('the schemas catch a broken object (the check can fail)', async () => {
    const { byKind } = await render('deploy/kubernetes');
    const monitor = structuredClone(byKind('ServiceMonitor'));
    monitor['spec'].endpoints[0].interval = 'half a minute';
    expect(schemaErrors(monitor as K8sObject)).toMatch(/interval/);
    const policy = structuredClone(byKind('NetworkPolicy'));
    policy['spec'].ingress[0].ports[0].protocol = 42;
    expect(schemaErrors(policy as K8sObject)).toMatch(/protocol/);
  });

  itKubectl('NetworkPolicy: the Prometheus namespace and DNS selectors come from networkpolicy-params.yaml, no placeholder left', async () => {
    const { byKind } = await render('deploy/kubernetes');
    const policy = byKind('NetworkPolicy');
    expect(JSON.stringify(policy)).not.toContain('set-in');
    const params = parse(await readFile('deploy/kubernetes/base/networkpolicy-params.yaml', 'utf8')) as Array<{ path: string; value: unknown }>;
    const at = (path: string) =>
      path
        .split('/')
        .slice(1)
        .reduce<Obj | undefined>((node, key) => node?.[key] as Obj | undefined, policy);
    for (const { path, value } of params) expect(at(path), path).toEqual(value);
    expect(policy['spec'].ingress[1].from[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'monitoring' });
    expect(policy['spec'].egress[1].to[0]).toEqual({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
      podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
    });
  });

  itKubectl('kube-prometheus-stack overlay: the release label its selectors look for, only its Prometheus pods may scrape, nothing else changed', async () => {
    const base = await render('deploy/kubernetes');
    const kps = await render('deploy/kubernetes/overlays/kube-prometheus-stack');
    // kube-prometheus-stack's default selectors: matchLabels release=<Helm release> for monitors and rules.
    const selector = { release: 'kube-prometheus-stack' };
    for (const kind of ['ServiceMonitor', 'PrometheusRule']) expect(matches(selector, kps.byKind(kind)['metadata'].labels), kind).toBe(true);
    const scrape = kps.byKind('NetworkPolicy')['spec'].ingress[1];
    expect(scrape.from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
      },
    ]);
    expect(scrape.ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
    // Undo exactly those changes: the rest is the base.
    for (const kind of ['ServiceMonitor', 'PrometheusRule']) delete kps.byKind(kind)['metadata'].labels.release;
    delete scrape.from[0].podSelector;
    expect(kps.all).toEqual(base.all);
  });
});

describeWithSharedCvat('README "Kubernetes" against CVAT 2.73 Helm chart', (shared) => {
  const chart = join(shared, 'v2.73.0', 'helm-chart');
  const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Obj;
  const snippet = parse(helmSnippet ?? '', { merge: true }) as Obj;
  const template = (path: string) => readFileSync(join(chart, 'templates', path), 'utf8');

  /** Every `additionalVolumes` list in the snippet, with its path in the values tree. */
  function volumeLists(node: Obj, path: string[] = []): Array<{ path: string[]; volumes: Obj[]; mounts: Obj[] }> {
    const here = Array.isArray(node['additionalVolumes'])
      ? [{ path, volumes: node['additionalVolumes'] as Obj[], mounts: node['additionalVolumeMounts'] as Obj[] }]
      : [];
    return [...here, ...Object.entries(node).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? volumeLists(v as Obj, [...path, k]) : []))];
  }
  const at = (tree: Obj, path: string[]) => path.reduce<Obj | undefined>((n, k) => n?.[k], tree);

  it('has a Helm values snippet that parses and only uses keys the chart has', () => {
    expect(helmSnippet, 'a ```yaml block in README "Kubernetes"').toBeDefined();
    const lists = volumeLists(snippet);
    expect(lists.map((l) => l.path.join('.'))).toEqual(expect.arrayContaining(['cvat.backend.server', 'cvat.backend.worker.chunks']));
    for (const { path } of lists) {
      expect(at(values, [...path, 'additionalVolumes']), `${path.join('.')}.additionalVolumes in values.yaml`).toEqual([]);
      expect(at(values, [...path, 'additionalVolumeMounts']), `${path.join('.')}.additionalVolumeMounts in values.yaml`).toEqual([]);
    }
    expect(typeof at(values, ['smokescreen', 'opts'])).toBe('string');
    expect(at(snippet, ['smokescreen', 'opts'])).toMatch(/^--allow-address=\d+\.\d+\.\d+\.\d+$/);
  });

  it('mounts the share at /home/django/share from one claim in every listed component', () => {
    const claims = new Set<string>();
    for (const { path, volumes, mounts } of volumeLists(snippet)) {
      const mount = mounts.find((m) => m['mountPath'] === SHARE);
      expect(mount, `${path.join('.')} mounts ${SHARE}`).toBeDefined();
      const vol = volumes.find((v) => v['name'] === mount!['name']);
      expect(vol?.['persistentVolumeClaim']?.claimName, `${path.join('.')} volume ${mount!['name']}`).toBeTruthy();
      claims.add(vol!['persistentVolumeClaim'].claimName);
    }
    expect([...claims]).toEqual(['cvat-share']);
  });

  it('feeds the chart templates that consume those lists (server and chunk worker)', () => {
    const server = template('cvat_backend/server/deployment.yml');
    const chunks = template('cvat_backend/worker_chunks/deployment.yml');
    expect(server).toContain('$localValues := .Values.cvat.backend.server');
    expect(chunks).toContain('$localValues := .Values.cvat.backend.worker.chunks');
    for (const text of [server, chunks]) {
      expect(text).toContain('concat .Values.cvat.backend.additionalVolumes $localValues.additionalVolumes');
      expect(text).toContain('concat .Values.cvat.backend.additionalVolumeMounts $localValues.additionalVolumeMounts');
    }
    expect(template('_helpers.tpl')).toMatch(/name: SMOKESCREEN_OPTS\s+value: \{\{ \.Values\.smokescreen\.opts/);
  });

  itKubectl('points the warden at <release>-backend-service:8080 and lets it through the NetworkPolicy to the server pods', async () => {
    const service = template('cvat_backend/service.yml');
    expect(service).toContain('name: {{ .Release.Name }}-backend-service');
    const port = (values['cvat'].backend.service.spec.ports as Obj[])[0]!['port'];
    const { container, byKind, pod } = await render('deploy/kubernetes');
    expect(env(container)['CVAT_URL']).toBe(`http://${RELEASE}-backend-service:${port}`);
    expect(k8sSection).toContain('<release>-backend-service:8080');
    // The chart's server pods carry these labels (deployment.yml) and the Service selects them.
    for (const label of ['app: cvat-app', 'tier: backend', 'component: server']) expect(service).toContain(label);
    const egress = (byKind('NetworkPolicy')['spec'].egress as Obj[]).find((rule) => (rule['ports'] as Obj[]).some((p) => p['port'] === port))!;
    expect(egress['to'][0].podSelector.matchLabels).toEqual({ app: 'cvat-app', tier: 'backend', component: 'server' });
    // The warden's share claim is the snippet's.
    expect(volume(pod, mountAt(container, SHARE)!['name'])['persistentVolumeClaim'].claimName).toBe('cvat-share');
  });

  itKubectl(
    "deep overlay: the stores' hosts, ports and Secrets of the chart, passwords only by $(VAR) from those Secrets, egress to exactly those pods, nothing else changed",
    async () => {
      const base = await render('deploy/kubernetes');
      const deep = await render('deploy/kubernetes/overlays/deep');
      const list = deep.container['env'] as Obj[];
      const envValues = env(deep.container);
      const helpers = template('_helpers.tpl');
      // The Secrets and keys CVAT's backend reads its stores' credentials from (cvat.sharedBackendEnv).
      const fromSecret = new Map(
        list.filter((e) => e['valueFrom']).map((e) => [e['name'] as string, e['valueFrom'].secretKeyRef as { name: string; key: string }]),
      );
      const chartSecret = (valuesPath: string) => valuesPath.replace('{{ .Release.Name }}', RELEASE);
      const expectSecret = (variable: string, secretName: string, key: string) => {
        expect(fromSecret.get(variable), variable).toEqual({ name: secretName, key });
        // The chart's backend takes the same Secret/key for the same store.
        expect(helpers).toMatch(
          new RegExp(`${variable}\\s+valueFrom:\\s+secretKeyRef:\\s+name: "\\{\\{ tpl \\(\\.Values\\.[\\w.]+\\.secret\\.name\\) \\. \\}\\}"\\s+key: ${key}`),
        );
      };
      expectSecret('CVAT_POSTGRES_USER', chartSecret(values['postgresql'].secret.name), 'username');
      expectSecret('CVAT_POSTGRES_PASSWORD', chartSecret(values['postgresql'].secret.name), 'password');
      expectSecret('CVAT_POSTGRES_DBNAME', chartSecret(values['postgresql'].secret.name), 'database');
      expectSecret('CVAT_REDIS_INMEM_PASSWORD', chartSecret(values['redis'].secret.name), 'password');
      expect(fromSecret.get('CVAT_KVROCKS_PASSWORD')).toEqual({ name: chartSecret(values['cvat'].kvrocks.secret.name), key: 'password' });
      expect(helpers).toMatch(
        /CVAT_REDIS_ONDISK_PASSWORD\s+valueFrom:\s+secretKeyRef:\s+name: "\{\{ tpl \(\.Values\.cvat\.kvrocks\.secret\.name\) \. \}\}"\s+key: password/,
      );
      // Each URL: the host and port CVAT's backend uses, every $(VAR) defined earlier in the list (Kubernetes expands only those).
      const index = (name: string) => list.findIndex((e) => e['name'] === name);
      const hostOf = (variable: string) => new RegExp(`- name: ${variable}\\s+value: "\\{\\{ \\.Release\\.Name \\}\\}-([\\w-]+)"`).exec(helpers)![1];
      const portOf = (variable: string) => new RegExp(`- name: ${variable}\\s+value: "(\\d+)"`).exec(helpers)?.[1];
      const stores = [
        { variable: 'CVAT_WARDEN_CACHE_URL', kind: 'redis', host: `${RELEASE}-${hostOf('CVAT_REDIS_ONDISK_HOST')}`, port: portOf('CVAT_REDIS_ONDISK_PORT') },
        { variable: 'CVAT_WARDEN_QUEUE_URL', kind: 'redis', host: `${RELEASE}-${hostOf('CVAT_REDIS_INMEM_HOST')}`, port: portOf('CVAT_REDIS_INMEM_PORT') },
        {
          variable: 'CVAT_WARDEN_DB_URL',
          kind: 'postgres',
          host: `${RELEASE}-${hostOf('CVAT_POSTGRES_HOST')}`,
          port: String(values['postgresql'].service.ports.postgresql),
        },
      ] as const;
      const egress = deep.byKind('NetworkPolicy')['spec'].egress as Obj[];
      for (const store of stores) {
        const url = envValues[store.variable]!;
        for (const [, ref] of url.matchAll(/\$\((\w+)\)/g)) {
          expect(fromSecret.has(ref!), `${store.variable} uses $(${ref}) from a Secret`).toBe(true);
          expect(index(ref!), `$(${ref}) is defined before ${store.variable}`).toBeLessThan(index(store.variable));
        }
        expect(url).not.toMatch(/:[^$/:@]+@/); // no literal password
        const expanded = url.replace(/\$\((\w+)\)/g, (_, name: string) => `x${name.toLowerCase()}`);
        const parsed = parseStoreUrl(expanded, store.kind, store.variable);
        if ('problem' in parsed) throw new Error(parsed.problem);
        expect(parsed.url.hostname, store.variable).toBe(store.host);
        expect(parsed.url.port, store.variable).toBe(store.port);
        expect(
          egress.some((rule) => (rule['ports'] as Obj[]).some((p) => String(p['port']) === store.port)),
          `egress to port ${store.port}`,
        ).toBe(true);
      }
      // Kvrocks' pods carry the chart's labels.
      const kvrocksRule = egress.find((rule) => (rule['ports'] as Obj[]).some((p) => p['port'] === 6666))!;
      expect(kvrocksRule['to'][0].podSelector.matchLabels).toEqual({ app: 'cvat-app', tier: 'kvrocks' });
      expect(template('cvat_kvrocks/statefulset.yml')).toMatch(/app: cvat-app\s+tier: kvrocks/);
      // Undo exactly those changes: the rest is the base.
      deep.container['env'] = list.filter((e) => !fromSecret.has(e['name'] as string) && !stores.some((s) => s.variable === e['name']));
      deep.byKind('NetworkPolicy')['spec'].egress = egress.slice(0, (base.byKind('NetworkPolicy')['spec'].egress as Obj[]).length);
      expect(deep.all).toEqual(base.all);
      expect(k8sSection).toContain('deploy/kubernetes/overlays/deep');
    },
  );
});
