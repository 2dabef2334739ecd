/**
 * Turns argv + environment into typed option values, collecting every problem instead
 * of stopping at the first, so `cvat-warden` can list them all and exit 2.
 */
import { parseArgs } from 'node:util';
import { optionsFor, type CommandName, type OptionSpec } from './options.js';

export type OptionValue = string | boolean | number | number[] | string[];

export interface ParsedOptions {
  values: Map<string, OptionValue>;
  /** Where each value came from, for messages: `--concurrency` or `CVAT_WARDEN_CONCURRENCY`. */
  sources: Map<string, string>;
  positionals: string[];
  problems: string[];
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "20h", "90m", "1.5s", "250ms", or a bare number of seconds → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 's']!);
}

function convert(spec: OptionSpec, raw: string | boolean, origin: string, problems: string[]): OptionValue | undefined {
  const bad = (expected: string) => {
    problems.push(`${origin}: expected ${expected}, got ${JSON.stringify(raw)}`);
    return undefined;
  };
  switch (spec.type) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      return bad('true or false');
    case 'integer': {
      const n = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      return Number.isSafeInteger(n) ? n : bad('a whole number');
    }
    case 'number': {
      const n = typeof raw === 'string' ? Number(raw) : NaN;
      return Number.isFinite(n) ? n : bad('a number');
    }
    case 'duration': {
      const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
      return ms !== undefined ? ms : bad('a duration such as 20h, 90m, 30s or 500ms');
    }
    case 'ids': {
      if (typeof raw !== 'string') return bad('ids');
      const parts = raw.split(',').map((p) => p.trim()).filter(Boolean);
      if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) return bad('positive id numbers, e.g. 12 or 12,13');
      return parts.map(Number);
    }
    case 'paths':
      return typeof raw === 'string' && raw.trim() !== '' ? [raw] : bad('a path');
    case 'string':
    case 'path': {
      if (typeof raw !== 'string' || raw.trim() === '') return bad('a value');
      if (spec.choices && !spec.choices.includes(raw)) return bad(`one of ${spec.choices.join(', ')}`);
      return raw;
    }
  }
}

export function parseOptions(command: CommandName, argv: readonly string[], env: NodeJS.ProcessEnv): ParsedOptions {
  const specs = optionsFor(command);
  const problems: string[] = [];
  const values = new Map<string, OptionValue>();
  const sources = new Map<string, string>();
  const parseSpec = Object.fromEntries(
    specs.map((s) => [s.name, { type: s.type === 'boolean' ? ('boolean' as const) : ('string' as const), multiple: s.type === 'ids' || s.type === 'paths' }]),
  );
  // strict: false so unknown options are collected as problems rather than thrown one at a time.
  const { tokens } = parseArgs({ args: [...argv], options: parseSpec, strict: false, allowPositionals: true, tokens: true });
  const positionals: string[] = [];
  const known = new Map(specs.map((s) => [s.name, s]));
  for (const token of tokens ?? []) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    const spec = known.get(token.name);
    const origin = `--${token.name}`;
    if (!spec) {
      problems.push(`${token.rawName}: unknown option for "${command}" (see cvat-warden ${command} --help)`);
      continue;
    }
    if (spec.type !== 'boolean' && token.value === undefined) {
      problems.push(`${origin}: needs a value`);
      continue;
    }
    const value = convert(spec, token.value ?? true, origin, problems);
    if (value === undefined) continue;
    const previous = values.get(spec.name);
    values.set(spec.name, Array.isArray(previous) && Array.isArray(value) ? ([...previous, ...value] as OptionValue) : value);
    sources.set(spec.name, origin);
  }
  for (const spec of specs) {
    if (values.has(spec.name)) continue;
    const fromEnv = spec.env ? env[spec.env] : undefined;
    const raw = fromEnv !== undefined && fromEnv !== '' ? fromEnv : spec.default;
    if (raw === undefined) continue;
    const origin = fromEnv !== undefined && fromEnv !== '' ? spec.env! : `default of --${spec.name}`;
    const value = convert(spec, raw, origin, problems);
    if (value !== undefined) {
      values.set(spec.name, value);
      sources.set(spec.name, origin);
    }
  }
  return { values, sources, positionals, problems };
}
