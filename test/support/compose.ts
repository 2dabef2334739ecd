/**
 * Just enough of `docker compose config` to check our compose files against CVAT's real
 * ones: Debian's docker-compose (v1) cannot parse CVAT 2.73's file (top-level `name`,
 * merge keys into lists), and no Docker engine runs here. Follows the Compose
 * specification (compose-spec, "Merge and override", "Interpolation"):
 *
 * - interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?msg}`, `$VAR`, `$$`;
 * - YAML merge keys (`<<: *anchor`, CVAT uses them for its backend environment);
 * - mappings merge by key, recursively; sequences append; `command`/`entrypoint` are
 *   replaced; `volumes` and `secrets` of a service merge by container target, `ports`
 *   by value; `environment`/`labels` (list or map) and `networks`/`depends_on` (list or
 *   map) are normalised to mappings first;
 * - relative paths (bind sources, secret files, local build contexts) resolve against the
 *   project directory, the directory of the first `-f` file.
 */
import { isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';

type Json = null | boolean | number | string | Json[] | Mapping;
export interface Mapping {
  [key: string]: Json | undefined;
}

export interface VolumeMount {
  type: 'volume' | 'bind' | 'tmpfs';
  source?: string;
  target: string;
  read_only: boolean;
}

export interface ComposeProject {
  name?: string;
  services: Record<string, Mapping>;
  volumes: Record<string, Mapping | null>;
  networks: Record<string, Mapping | null>;
  secrets: Record<string, Mapping | null>;
}

const isMapping = (v: unknown): v is Mapping => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A scalar as compose reads it; '' for anything else. */
export const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');

/** Compose interpolation of one string. Throws on `${VAR:?msg}` with VAR unset or empty. */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (all, braced?: string, colon?: string, op?: string, word?: string, bare?: string) => {
      if (all === '$$') return '$';
      const name = (braced ?? bare)!;
      const value = env[name];
      const unset = colon ? !value : value === undefined;
      if (!op) return value ?? '';
      if (op === '-') return unset ? interpolate(word ?? '', env) : value!;
      if (unset) throw new Error(`required variable ${name} is missing: ${word ?? ''}`);
      return value!;
    },
  );
}

function interpolateAll(value: Json | undefined, env: Record<string, string | undefined>): Json {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateAll(v, env));
  if (isMapping(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, env)]));
  return value ?? null;
}

/** Short volume syntax `source:target[:mode]` (or a bare target) → the long form. */
export function parseVolume(entry: Json): VolumeMount {
  if (isMapping(entry)) {
    const m: VolumeMount = {
      type: (entry['type'] as VolumeMount['type'] | undefined) ?? 'volume',
      target: text(entry['target']),
      read_only: entry['read_only'] === true,
    };
    if (typeof entry['source'] === 'string') m.source = entry['source'];
    return m;
  }
  const parts = text(entry).split(':');
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, read_only: false };
  const [source, target, mode = ''] = parts as [string, string, string?];
  const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
  return { type: bind ? 'bind' : 'volume', source, target, read_only: mode.split(',').includes('ro') };
}

function toMapping(value: Json | undefined, listItem: (item: string) => [string, Json]): Mapping {
  if (value === undefined || value === null) return {};
  if (Array.isArray(value)) return Object.fromEntries(value.map((item) => listItem(text(item))));
  return value as Mapping;
}

function normaliseService(service: Mapping): Mapping {
  const out: Mapping = { ...service };
  const keyValue = (item: string): [string, Json] => {
    const i = item.indexOf('=');
    return i === -1 ? [item, null] : [item.slice(0, i), item.slice(i + 1)];
  };
  if ('environment' in out) out['environment'] = toMapping(out['environment'], keyValue);
  if ('labels' in out) out['labels'] = toMapping(out['labels'], keyValue);
  if ('networks' in out) out['networks'] = toMapping(out['networks'], (name) => [name, null]);
  if ('depends_on' in out) out['depends_on'] = toMapping(out['depends_on'], (name) => [name, { condition: 'service_started' }]);
  if ('volumes' in out) out['volumes'] = (out['volumes'] as Json[]).map((v) => parseVolume(v) as unknown as Json);
  if ('secrets' in out) {
    out['secrets'] = (out['secrets'] as Json[]).map((s) =>
      isMapping(s) ? { target: `/run/secrets/${text(s['source'])}`, ...s } : { source: s, target: `/run/secrets/${text(s)}` },
    );
  }
  return out;
}

/** Sequences of unique resources: the overriding entry replaces the one with the same key. */
function mergeByKey(base: Json[], override: Json[], key: (item: Json) => string): Json[] {
  const merged = new Map<string, Json>();
  for (const item of [...base, ...override]) merged.set(key(item), item);
  return [...merged.values()];
}

function mergeService(base: Mapping, override: Mapping): Mapping {
  const out: Mapping = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const previous = out[key];
    if (key === 'command' || key === 'entrypoint') out[key] = value;
    else if (key === 'volumes' || key === 'secrets')
      out[key] = mergeByKey((previous as Json[] | undefined) ?? [], value as Json[], (v) => text((v as Mapping)['target']));
    else if (key === 'ports') out[key] = mergeByKey((previous as Json[] | undefined) ?? [], value as Json[], (v) => JSON.stringify(v));
    else out[key] = mergeValues(previous, value);
  }
  return out;
}

function mergeValues(base: Json | undefined, override: Json | undefined): Json {
  if (isMapping(base) && isMapping(override)) {
    const out: Mapping = { ...base };
    for (const [k, v] of Object.entries(override)) out[k] = mergeValues(out[k], v);
    return out;
  }
  if (Array.isArray(base) && Array.isArray(override)) return [...base, ...override];
  return override ?? null;
}

export interface ComposeFile {
  /** Where the file is, for resolving relative paths when it is the first one. */
  path: string;
  text: string;
}

/** `docker compose -f a -f b … config`, in-process: interpolated, merged, paths resolved. */
export function composeConfig(files: ComposeFile[], env: Record<string, string | undefined>): ComposeProject {
  if (files.length === 0) throw new Error('no compose file');
  const projectDir = resolve(files[0]!.path, '..');
  const project: ComposeProject = { services: {}, volumes: {}, networks: {}, secrets: {} };
  for (const file of files) {
    const doc = parse(file.text, { merge: true }) as Mapping;
    if (!isMapping(doc)) throw new Error(`${file.path}: not a mapping`);
    const data = interpolateAll(Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith('x-'))), env) as Mapping;
    if (typeof data['name'] === 'string') project.name = data['name'];
    for (const [name, service] of Object.entries((data['services'] as Mapping | undefined) ?? {})) {
      const normal = normaliseService((service ?? {}) as Mapping);
      project.services[name] = project.services[name] ? mergeService(project.services[name], normal) : normal;
    }
    for (const section of ['volumes', 'networks', 'secrets'] as const) {
      for (const [name, value] of Object.entries((data[section] as Mapping | undefined) ?? {})) {
        project[section][name] = mergeValues(project[section][name] ?? null, value) as Mapping | null;
      }
    }
  }
  const local = (p: string) => (isAbsolute(p) || /^[a-z]+:\/\//i.test(p) || p.startsWith('git@') ? p : resolve(projectDir, p));
  for (const service of Object.values(project.services)) {
    for (const volume of (service['volumes'] as unknown as VolumeMount[] | undefined) ?? [])
      if (volume.type === 'bind' && volume.source) volume.source = local(volume.source);
    const build = service['build'];
    if (typeof build === 'string') service['build'] = { context: local(build) };
    else if (isMapping(build) && typeof build['context'] === 'string') build['context'] = local(build['context']);
  }
  for (const secret of Object.values(project.secrets)) if (secret && typeof secret['file'] === 'string') secret['file'] = local(secret['file']);
  return project;
}

/**
 * What `docker compose config` would refuse in the merged project: a service that uses an
 * undeclared named volume, network or secret, or depends on a service that does not exist.
 */
export function composeProblems(project: ComposeProject): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(project.services)) {
    for (const volume of (service['volumes'] as unknown as VolumeMount[] | undefined) ?? []) {
      if (volume.type === 'volume' && volume.source && !(volume.source in project.volumes))
        problems.push(`service "${name}" refers to undefined volume ${volume.source}`);
    }
    for (const network of Object.keys((service['networks'] as Mapping | undefined) ?? {})) {
      if (!(network in project.networks) && network !== 'default') problems.push(`service "${name}" refers to undefined network ${network}`);
    }
    for (const secret of (service['secrets'] as Mapping[] | undefined) ?? []) {
      if (!(text(secret['source']) in project.secrets)) problems.push(`service "${name}" refers to undefined secret ${text(secret['source'])}`);
    }
    for (const dependency of Object.keys((service['depends_on'] as Mapping | undefined) ?? {})) {
      if (!(dependency in project.services)) problems.push(`service "${name}" depends on undefined service ${dependency}`);
    }
  }
  return problems;
}

/** Network aliases a service answers to on `network` (its name counts as one, as in compose). */
export function networkNames(project: ComposeProject, network: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const [name, service] of Object.entries(project.services)) {
    const networks = (service['networks'] as Mapping | undefined) ?? {};
    if (!(network in networks)) continue;
    names.set(name, name);
    const aliases = (networks[network] as Mapping | null)?.['aliases'];
    for (const alias of Array.isArray(aliases) ? aliases : []) names.set(text(alias), name);
  }
  return names;
}
