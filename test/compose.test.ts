/**
 * The README's compose route, against CVAT 2.73's real compose files: the command is read
 * from README.md ("Docker Compose"), its `-f` files are CVAT's docker-compose.yml
 * (../shared/cvat/v2.73.0), the docker-compose.override.yml that CVAT's install guide
 * prescribes (site/.../basics/installation.md, "Share path", taken from the guide itself)
 * and ours; they are merged the way `docker compose config` would (test/support/compose.ts,
 * Compose specification merge rules — Debian's docker-compose v1 cannot parse CVAT's file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { OPTIONS as TABLE, type OptionSpec } from '../src/config/options.js';
import { parseStoreUrl } from '../src/deep/store-url.js';
import {
  composeConfig,
  composeProblems,
  interpolate,
  networkNames,
  text,
  type ComposeFile,
  type ComposeProject,
  type Mapping,
  type VolumeMount,
} from './support/compose.js';
import { codeBlocks, composeFileArgs, readmeSection, shellCommands } from './support/readme.js';
import { describeWithSharedCvat } from './support/shared-cvat.js';

/** The options table, widened: these tests look up env names of any row. */
const OPTIONS: readonly OptionSpec[] = TABLE;

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; repository: { url: string } };
const SHARE = '/home/django/share';
/**
 * Django's Host header check (django/http/request.py, `host_validation_re`), applied before
 * ALLOWED_HOSTS: letters, digits, dots and hyphens only — `cvat_server` fails it (HTTP 400).
 */
const DJANGO_HOST_RE = /^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]+))?$/;
const PLACEHOLDER_RE = /\/path\/to|<[a-z][\w -]*>|example\.(com|org)|changeme|TODO|FIXME|your[-_ ]/i;

const compose = readmeSection('Docker Compose');
const shell = codeBlocks(compose, 'sh').flatMap(shellCommands);
const upCommands = shell.filter((c) => c.startsWith('docker compose '));

/** The `### Share path` override of CVAT's installation guide, exactly as the guide gives it. */
function guideOverride(cvatDir: string): string {
  const guide = readFileSync(join(cvatDir, 'site/content/en/docs/administration/community/basics/installation.md'), 'utf8');
  const section = guide.slice(guide.indexOf('### Share path'));
  const block = /```yml\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('no yml block under "Share path" in the installation guide');
  return block[1]!;
}

/** The files a `-f` list names, read from where they are when run from CVAT's checkout. */
function filesOf(args: string[], cvatDir: string, withOverride = true): ComposeFile[] {
  return args.flatMap((arg): ComposeFile[] => {
    const path = resolve(cvatDir, arg);
    if (arg === 'docker-compose.yml') return [{ path, text: readFileSync(path, 'utf8') }];
    if (arg === 'docker-compose.override.yml') return withOverride ? [{ path, text: guideOverride(cvatDir) }] : [];
    // ../cvat-warden/deploy/… beside CVAT's checkout is this repository's deploy/.
    const match = /^\.\.\/cvat-warden\/(deploy\/[\w.-]+\.yml)$/.exec(arg);
    if (!match) throw new Error(`README names a compose file the test cannot place: ${arg}`);
    return [{ path, text: readFileSync(match[1]!, 'utf8') }];
  });
}

const service = (project: ComposeProject, name: string) => {
  const s = project.services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
};
const volumesOf = (s: Mapping) => (s['volumes'] as unknown as VolumeMount[] | undefined) ?? [];
const envOf = (s: Mapping) => (s['environment'] as Record<string, string | null> | undefined) ?? {};

describe('compose interpolation helper', () => {
  it('follows the Compose rules for defaults, required values and $$', () => {
    expect(interpolate('${A:-x} ${B-y} $$C ${C}', { B: '', C: 'c' })).toBe('x  $C c');
    expect(() => interpolate('${A:?needed}', {})).toThrow(/needed/);
  });
});

describeWithSharedCvat('compose: the README command with CVAT 2.73 real compose files', (shared) => {
  const cvatDir = join(shared, 'v2.73.0');
  const env = { SMOKESCREEN_OPTS: '--allow-address=172.18.0.9' };
  const baseArgs = upCommands.map(composeFileArgs).find((args) => !args.some((a) => a.includes('vault')));
  const vaultArgs = [...(baseArgs ?? []), '../cvat-warden/deploy/docker-compose.cvat-warden.vault.yml'];
  const project = () => composeConfig(filesOf(baseArgs!, cvatDir), env);

  it("is documented with CVAT's file first, the guide's override named, and ours last", () => {
    expect(baseArgs, 'a `docker compose -f … up -d` line in README "Docker Compose"').toBeDefined();
    expect(baseArgs!.slice(0, 2)).toEqual(['docker-compose.yml', 'docker-compose.override.yml']);
    expect(baseArgs![2]).toMatch(/deploy\/docker-compose\.cvat-warden\.yml$/);
    expect(compose).toContain(vaultArgs.at(-1));
  });

  it('merges into a project compose accepts: every volume, network, secret and dependency declared', () => {
    const merged = project();
    expect(merged.name).toBe('cvat');
    expect(composeProblems(merged)).toEqual([]);
  });

  it('fails without docker-compose.override.yml, as the old README command did (cvat_share undeclared)', () => {
    const merged = composeConfig(filesOf(baseArgs!, cvatDir, false), env);
    expect(composeProblems(merged)).toContain('service "cvat_warden" refers to undefined volume cvat_share');
  });

  it('joins the cvat network and reaches CVAT by a host name Django accepts, an alias of cvat_server on port 8080', () => {
    const merged = project();
    const warden = service(merged, 'cvat_warden');
    expect(Object.keys(warden['networks'] as Mapping)).toEqual(['cvat']);
    expect(merged.networks).toHaveProperty('cvat');
    const url = new URL(String(envOf(warden)['CVAT_URL']));
    expect(url.protocol).toBe('http:');
    expect(url.hostname).not.toContain('_');
    expect(url.host).toMatch(DJANGO_HOST_RE);
    expect(networkNames(merged, 'cvat').get(url.hostname), `${url.hostname} on the cvat network`).toBe('cvat_server');
    expect(url.port).toBe('8080');
    // The warden's own names on the network: one without an underscore for webhooks and Prometheus.
    expect(networkNames(merged, 'cvat').get('cvat-warden')).toBe('cvat_warden');
  });

  it("mounts the very cvat_share volume CVAT's chunk workers read, read-only at the same path, and a named state volume", () => {
    const merged = project();
    const warden = service(merged, 'cvat_warden');
    const share = volumesOf(warden).find((v) => v.target === SHARE);
    expect(share).toEqual({ type: 'volume', source: 'cvat_share', target: SHARE, read_only: true });
    for (const cvat of ['cvat_server', 'cvat_worker_chunks']) {
      expect(volumesOf(service(merged, cvat)).find((v) => v.target === SHARE)?.source, cvat).toBe('cvat_share');
    }
    expect(envOf(warden)['CVAT_SHARE_DIR']).toBe(SHARE);
    const stateDir = envOf(warden)['CVAT_WARDEN_STATE_DIR'];
    const state = volumesOf(warden).find((v) => v.target === stateDir);
    expect(state?.type).toBe('volume');
    expect(merged.volumes).toHaveProperty(state!.source!);
  });

  it("reads the token from a Docker secret whose file resolves in CVAT's checkout, where the README puts it", () => {
    const merged = project();
    const warden = service(merged, 'cvat_warden');
    const secrets = warden['secrets'] as Mapping[];
    expect(secrets).toHaveLength(1);
    expect(envOf(warden)['CVAT_ACCESS_TOKEN_FILE']).toBe(secrets[0]!['target']);
    const file = text(merged.secrets[text(secrets[0]!['source'])]?.['file']);
    expect(dirname(file)).toBe(cvatDir);
    const written = shell.map((c) => /> *(\S+)\)?$/.exec(c)?.[1]).find(Boolean);
    expect(written, 'the README writes the token file').toBeDefined();
    expect(resolve(cvatDir, written!.replace(/\)$/, ''))).toBe(file);
    expect(envOf(warden)).not.toHaveProperty('CVAT_ACCESS_TOKEN');
  });

  it('uses the published image of this version, with a build context that resolves from anywhere', () => {
    const warden = service(project(), 'cvat_warden');
    const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    const owner = new URL(repo).pathname.split('/')[1];
    expect(warden['image']).toBe(`ghcr.io/${owner}/cvat-warden:${pkg.version}`);
    const context = text((warden['build'] as Mapping)['context']);
    if (/^https:\/\//.test(context)) expect(context).toBe(`${repo}.git#v${pkg.version}`);
    else expect(existsSync(join(context, 'Dockerfile')), `${context}/Dockerfile`).toBe(true);
  });

  it('has no placeholders, and only environment variables the warden knows', () => {
    const merged = project();
    const warden = service(merged, 'cvat_warden');
    expect(JSON.stringify(warden)).not.toMatch(PLACEHOLDER_RE);
    expect(JSON.stringify(merged.secrets)).not.toMatch(PLACEHOLDER_RE);
    const known = new Set(OPTIONS.map((o) => o.env).filter(Boolean));
    for (const name of Object.keys(envOf(warden))) expect(known, name).toContain(name);
  });

  it("passes SMOKESCREEN_OPTS, as the README sets it for webhooks, to CVAT's webhook worker", () => {
    const exported = shell.find((c) => c.startsWith('export SMOKESCREEN_OPTS='));
    expect(exported, 'README "Docker Compose" exports SMOKESCREEN_OPTS').toMatch(
      /^export SMOKESCREEN_OPTS="--allow-address=\$\(docker inspect .*cvat_warden\)"$/,
    );
    expect(compose).toContain('http://cvat-warden:9464/webhooks/cvat');
    const merged = project();
    for (const worker of ['cvat_worker_webhooks', 'cvat_server']) expect(envOf(service(merged, worker))['SMOKESCREEN_OPTS'], worker).toBe(env.SMOKESCREEN_OPTS);
  });

  it('vault variant: the share is writable for the warden only, with the vault inside it', () => {
    const merged = composeConfig(filesOf(vaultArgs, cvatDir), env);
    expect(composeProblems(merged)).toEqual([]);
    const warden = service(merged, 'cvat_warden');
    const shares = volumesOf(warden).filter((v) => v.target === SHARE);
    expect(shares).toEqual([{ type: 'volume', source: 'cvat_share', target: SHARE, read_only: false }]);
    const vault = String(envOf(warden)['CVAT_WARDEN_VAULT']);
    expect(relative(SHARE, vault)).toMatch(/^\.[\w-]+$/);
    const vaultOption = OPTIONS.find((o) => o.name === 'vault');
    if (vaultOption) expect(vaultOption.env).toBe('CVAT_WARDEN_VAULT');
    for (const [name, s] of Object.entries(merged.services)) {
      if (name === 'cvat_warden') continue;
      for (const v of volumesOf(s).filter((m) => m.source === 'cvat_share')) expect(v.read_only, `${name} keeps the share read-only`).toBe(true);
    }
    // The base file alone stays read-only.
    expect(volumesOf(service(project(), 'cvat_warden')).find((v) => v.target === SHARE)?.read_only).toBe(true);
    expect(basename(vaultArgs.at(-1)!)).toBe('docker-compose.cvat-warden.vault.yml');
  });

  it("deep variant: reads the stores CVAT's compose file defines — Kvrocks, PostgreSQL with its user and database, the in-memory Redis — on a shared network", () => {
    const deepArgs = [...(baseArgs ?? []), '../cvat-warden/deploy/docker-compose.cvat-warden.deep.yml'];
    expect(compose).toContain(deepArgs.at(-1));
    const merged = composeConfig(filesOf(deepArgs, cvatDir), env);
    expect(composeProblems(merged)).toEqual([]);
    const warden = service(merged, 'cvat_warden');
    const wardenEnv = envOf(warden);
    const known = new Set(OPTIONS.map((o) => o.env).filter(Boolean));
    for (const name of Object.keys(wardenEnv)) expect(known, name).toContain(name);
    // CVAT's backend reaches its stores at these hosts and ports (x-backend-env in CVAT's docker-compose.yml).
    const backend = envOf(service(merged, 'cvat_server'));
    const store = (variable: string, kind: 'redis' | 'postgres') => {
      const parsed = parseStoreUrl(String(wardenEnv[variable]), kind, variable);
      if ('problem' in parsed) throw new Error(parsed.problem);
      const host = parsed.url.hostname;
      const target = service(merged, host);
      const shared = Object.keys((target['networks'] as Mapping | undefined) ?? {}).filter((n) => n in ((warden['networks'] as Mapping | undefined) ?? {}));
      expect(shared, `${host} shares a network with the warden`).not.toEqual([]);
      expect(Object.keys((warden['depends_on'] as Mapping | undefined) ?? {})).toContain(host);
      return { url: parsed.url, target };
    };
    const cache = store('CVAT_WARDEN_CACHE_URL', 'redis');
    expect(cache.url.hostname).toBe(String(backend['CVAT_REDIS_ONDISK_HOST']));
    expect(cache.url.port).toBe(String(backend['CVAT_REDIS_ONDISK_PORT']));
    expect(text(cache.target['image'])).toMatch(/kvrocks/);
    const queue = store('CVAT_WARDEN_QUEUE_URL', 'redis');
    expect(queue.url.hostname).toBe(String(backend['CVAT_REDIS_INMEM_HOST']));
    expect(queue.url.port).toBe(String(backend['CVAT_REDIS_INMEM_PORT']));
    const db = store('CVAT_WARDEN_DB_URL', 'postgres');
    expect(db.url.hostname).toBe(String(backend['CVAT_POSTGRES_HOST']));
    const dbEnv = envOf(db.target);
    expect(decodeURIComponent(db.url.username)).toBe(dbEnv['POSTGRES_USER']);
    expect(db.url.pathname).toBe(`/${String(dbEnv['POSTGRES_DB'])}`);
    // No password in the URL: CVAT's compose trusts every connection on its network.
    expect(dbEnv['POSTGRES_HOST_AUTH_METHOD']).toBe('trust');
    expect(db.url.password).toBe('');
    // The base file alone stays in shallow mode.
    expect(envOf(service(project(), 'cvat_warden'))['CVAT_WARDEN_CACHE_URL']).toBeUndefined();
  });
});

/** Every `key: value` data source CVAT's Grafana entrypoint writes to datasources/ds.yaml (a heredoc in docker-compose.yml). */
function cvatGrafanaDatasources(grafana: Mapping): Array<Record<string, unknown>> {
  const script = ((grafana['entrypoint'] as string[] | undefined) ?? []).join('\n');
  const heredoc = /cat << 'EOF' > \/etc\/grafana\/provisioning\/datasources\/ds\.yaml\n([\s\S]*?)\n\s*EOF/.exec(script);
  if (!heredoc) throw new Error("CVAT's Grafana entrypoint no longer writes datasources/ds.yaml");
  const doc = parse(heredoc[1]!.replace(/^ {8}/gm, '')) as { datasources: Array<Record<string, unknown>> };
  return doc.datasources;
}

describeWithSharedCvat("compose: monitoring in CVAT's own Grafana, merged with CVAT 2.73's real compose files", (shared) => {
  const cvatDir = join(shared, 'v2.73.0');
  const args = upCommands.map(composeFileArgs).find((a) => a.some((f) => f.endsWith('docker-compose.cvat-warden.monitoring.yml')));
  const merged = () => composeConfig(filesOf(args!, cvatDir), {});
  /** A bind source in CVAT's checkout's ../cvat-warden is this repository. */
  const inRepo = (source: string) => {
    const rel = relative(resolve(cvatDir, '../cvat-warden'), source);
    if (rel.startsWith('..')) throw new Error(`${source} is not in ../cvat-warden`);
    return rel;
  };
  const mountOf = (s: Mapping, target: string) => {
    const found = volumesOf(s).find((v) => v.target === target);
    if (!found) throw new Error(`no mount at ${target}`);
    return found;
  };

  it('is documented in the README after the warden, and merges into a project compose accepts', () => {
    expect(args, 'a `docker compose … monitoring.yml up -d` line in README "Docker Compose"').toBeDefined();
    expect(args!.slice(0, 3)).toEqual(['docker-compose.yml', 'docker-compose.override.yml', '../cvat-warden/deploy/docker-compose.cvat-warden.yml']);
    expect(composeProblems(merged())).toEqual([]);
  });

  it("adds a non-default Prometheus data source to CVAT's Grafana, beside CVAT's default ClickHouse one", () => {
    const project = merged();
    const grafana = service(project, 'cvat_grafana');
    expect(text(grafana['image'])).toBe('grafana/grafana-oss:10.1.2');
    const cvatSources = cvatGrafanaDatasources(grafana);
    expect(cvatSources.filter((d) => d['isDefault'] === true).map((d) => d['name'])).toEqual(['ClickHouse']);
    const mount = mountOf(grafana, '/etc/grafana/provisioning/datasources/cvat-warden.yaml');
    // Another name than the ds.yaml CVAT's entrypoint writes, so neither replaces the other.
    expect(basename(mount.target)).not.toBe('ds.yaml');
    expect(mount.read_only).toBe(true);
    const ours = (parse(readFileSync(inRepo(mount.source!), 'utf8')) as { datasources: Array<Record<string, unknown>> }).datasources;
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatchObject({ type: 'prometheus', isDefault: false });
    expect([...cvatSources, ...ours].filter((d) => d['isDefault'] === true)).toHaveLength(1);
    // It points at the Prometheus this file adds, on CVAT's network.
    const url = new URL(String(ours[0]!['url']));
    expect(networkNames(project, 'cvat').get(url.hostname)).toBe('cvat_warden_prometheus');
    expect(url.port).toBe('9090');
  });

  it('runs a Prometheus that scrapes the warden (job cvat-warden) with its rules, at the interval the data source declares', () => {
    const project = merged();
    const prometheus = service(project, 'cvat_warden_prometheus');
    const config = parse(readFileSync(inRepo(mountOf(prometheus, '/etc/prometheus/prometheus.yml').source!), 'utf8')) as {
      global: { scrape_interval: string };
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; scrape_interval?: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const job = config.scrape_configs.find((c) => c.job_name === 'cvat-warden')!;
    const [host, port] = job.static_configs[0]!.targets[0]!.split(':');
    expect(networkNames(project, 'cvat').get(host!)).toBe('cvat_warden');
    expect(port).toBe('9464');
    for (const rules of config.rule_files) expect(inRepo(mountOf(prometheus, rules).source!)).toBe('grafana/alerts/cvat-warden-rules.yml');
    const datasource = parse(readFileSync('grafana/provisioning/datasources/prometheus.yaml', 'utf8')) as {
      datasources: Array<{ jsonData: { timeInterval: string } }>;
    };
    const interval = job.scrape_interval ?? config.global.scrape_interval;
    expect(datasource.datasources[0]!.jsonData.timeInterval).toBe(interval);
    const scrape = parse(readFileSync('deploy/prometheus-scrape.yml', 'utf8')) as Array<{ scrape_interval: string }>;
    expect(scrape[0]!.scrape_interval).toBe(interval);
  });

  it("provisions the dashboard outside CVAT's read-only dashboards mount, in a schema CVAT's Grafana 10.1 reads", () => {
    const grafana = service(merged(), 'cvat_grafana');
    const provider = mountOf(grafana, '/etc/grafana/provisioning/dashboards/cvat-warden.yaml');
    expect(basename(provider.target)).not.toBe('dashboard.yaml');
    const providers = (parse(readFileSync(inRepo(provider.source!), 'utf8')) as { providers: Array<{ options: { path: string } }> }).providers;
    const path = providers[0]!.options.path;
    const dashboards = mountOf(grafana, path);
    expect(inRepo(dashboards.source!)).toBe('grafana/dashboards');
    // CVAT's own provider loads /var/lib/grafana/dashboards recursively: ours must not be inside it (a duplicate uid).
    const cvatMount = mountOf(grafana, '/var/lib/grafana/dashboards/');
    expect(relative(cvatMount.target, path).startsWith('..')).toBe(true);
    // CVAT 2.73 ships grafana-oss 10.1.2 and its own dashboards at schemaVersion 38
    // (components/analytics/grafana/dashboards/*.json at release commit 7972cb4f2ad8, not in ../shared).
    const cvatSchema = 38;
    const ours = JSON.parse(readFileSync('grafana/dashboards/cvat-warden.json', 'utf8')) as { schemaVersion: number };
    expect(ours.schemaVersion).toBeLessThanOrEqual(cvatSchema);
  });
});
