/**
 * Turns argv + environment into the typed `OptionValues` record of options.ts,
 * collecting every problem instead of stopping at the first, so `cvat-warden` can list
 * them all and exit 2. Bounds, choices and defaults come from the table only.
 */
import { parseArgs } from 'node:util';
import { registerSecret } from '../secrets.js';
import { OPTIONS, optionsFor, type CommandName, type OptionName, type OptionSpec, type OptionValues } from './options.js';
import { didYouMean } from './suggest.js';

type Value = string | boolean | number | readonly number[] | readonly string[];

export interface ParsedOptions {
  values: OptionValues;
  /** Where each given value came from, for messages: `--concurrency` or `CVAT_WARDEN_CONCURRENCY`. Absent for defaults. */
  sources: Partial<Record<OptionName, string>>;
  problems: string[];
  /** Words that are not options, for the commands that take them (`impact PATH…`); empty for the others. */
  positionals: string[];
}

/** Commands whose bare words are paths rather than mistakes. */
const TAKES_PATHS: ReadonlySet<CommandName> = new Set<CommandName>(['impact']);

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "20h", "1h30m", "1.5s", "250ms", or a bare number of seconds → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  if (!/^(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount = '', unit = ''] of trimmed.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)) total += Number(amount) * (UNITS[unit] ?? NaN);
  return Math.round(total);
}

/** A duration written in the options table (a bound): invalid text there is a bug, not a user error. */
function tableDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`options table: "${text}" is not a duration`);
  return ms;
}

const range = (min: number | string, max: number | string, why: string | undefined) => `${min} to ${max}${why ? ` (${why})` : ''}`;

function convert(spec: OptionSpec, raw: string | boolean, origin: string, problems: string[]): Value | undefined {
  const bad = (expected: string): Value | undefined => {
    problems.push(`${origin}: expected ${expected}${spec.secret ? '' : `, got ${JSON.stringify(raw)}`}`);
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
      if (!Number.isSafeInteger(n)) return bad('a whole number');
      return n >= spec.min && n <= spec.max ? n : bad(range(spec.min, spec.max, spec.boundsWhy));
    }
    case 'duration': {
      const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
      if (ms === undefined) return bad('a duration such as 20h, 1h30m, 90s or 500ms');
      return ms >= tableDuration(spec.min) && ms <= tableDuration(spec.max) ? ms : bad(range(spec.min, spec.max, spec.boundsWhy));
    }
    case 'paths':
      return typeof raw === 'string' && raw.trim() !== '' ? [raw] : bad('a path');
    case 'ids': {
      if (typeof raw !== 'string') return bad('ids');
      const parts = raw
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) return bad('positive id numbers, e.g. 12 or 12,13');
      return parts.map(Number);
    }
    case 'string':
    case 'path': {
      if (typeof raw !== 'string' || raw.trim() === '') return bad('a value');
      if (spec.choices && !spec.choices.includes(raw)) return bad(`one of ${spec.choices.join(', ')}`);
      return raw;
    }
  }
}

/** The value an option has when nothing sets it: the table's default, false, an empty list, or undefined. */
function defaultValue(spec: OptionSpec): Value | undefined {
  if (spec.type === 'boolean') return spec.default ?? false;
  if (spec.type === 'ids' || spec.type === 'paths') return [];
  if (spec.default === undefined) return undefined;
  const problems: string[] = [];
  const value = convert(spec, typeof spec.default === 'number' ? String(spec.default) : spec.default, `default of --${spec.name}`, problems);
  if (problems.length) throw new Error(`options table: ${problems.join('; ')}`);
  return value;
}

function unknownOption(command: CommandName, rawName: string, name: string, flags: readonly string[]): string {
  const row = OPTIONS.find((o) => o.name === name);
  if (row && 'envOnly' in row) return `${rawName}: not taken as a flag (a secret on the command line shows in ps): set ${row.env}`;
  if (row) return `${rawName}: not an option of "${command}" (it is one of ${row.commands.join(', ')})`;
  return `${rawName}: unknown option for "${command}"${didYouMean(name, flags, '--')} (see cvat-warden ${command} --help)`;
}

export function parseOptions(command: CommandName, argv: readonly string[], env: NodeJS.ProcessEnv): ParsedOptions {
  const specs = optionsFor(command).filter((s) => !s.envOnly);
  const known = new Map(specs.map((s) => [s.name, s]));
  const problems: string[] = [];
  const given = new Map<string, Value>();
  const sources: Partial<Record<string, string>> = {};
  const positionals: string[] = [];
  const parseSpec = Object.fromEntries(
    specs.map((s) => [
      s.name,
      {
        type: s.type === 'boolean' ? ('boolean' as const) : ('string' as const),
        multiple: s.type === 'ids' || s.type === 'paths',
        ...(s.short ? { short: s.short } : {}),
      },
    ]),
  );
  // strict: false so unknown options are collected as problems rather than thrown one at a time.
  const { tokens } = parseArgs({ args: [...argv], options: parseSpec, strict: false, allowPositionals: true, tokens: true });
  // The word after an unknown `--name` is taken as its value, not reported again (and never echoed: it may be a secret).
  let valueOfUnknown = -1;
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (token.index === valueOfUnknown) continue;
      if (TAKES_PATHS.has(command)) {
        positionals.push(token.value);
        continue;
      }
      const asTask = known.has('task') && /^\d+(,\d+)*$/.test(token.value) ? ` (e.g. --task ${token.value})` : '';
      problems.push(`unexpected argument ${JSON.stringify(token.value)}: "${command}" takes only options${asTask}`);
      continue;
    }
    if (token.kind !== 'option') continue;
    const negated = token.name.startsWith('no-') ? known.get(token.name.slice(3)) : undefined;
    const spec = known.get(token.name) ?? (negated?.type === 'boolean' ? negated : undefined);
    if (!spec) {
      if (token.value === undefined) valueOfUnknown = token.index + 1;
      problems.push(unknownOption(command, token.rawName, token.name, [...known.keys()]));
      continue;
    }
    if (spec.type !== 'boolean' && token.value === undefined) {
      problems.push(`${token.rawName}: needs a value`);
      continue;
    }
    const value = convert(spec, spec === negated ? false : (token.value ?? true), token.rawName, problems);
    if (value === undefined) continue;
    const previous = given.get(spec.name);
    given.set(
      spec.name,
      Array.isArray(previous) && Array.isArray(value) ? ([...(previous as readonly unknown[]), ...(value as readonly unknown[])] as Value) : value,
    );
    sources[spec.name] = `--${spec.name}`;
  }
  const values: Record<string, Value | undefined> = {};
  const applicable = new Set(optionsFor(command).map((s) => s.name));
  for (const spec of OPTIONS as readonly OptionSpec[]) {
    let value = given.get(spec.name);
    const name = spec.env;
    const fromEnv = name !== undefined && applicable.has(spec.name) ? env[name] : undefined;
    if (value === undefined && name !== undefined && fromEnv !== undefined && fromEnv !== '') {
      if (spec.secret) registerSecret(fromEnv);
      value = convert(spec, fromEnv, name, problems);
      if (value !== undefined) sources[spec.name] = name;
    }
    values[spec.name] = value ?? defaultValue(spec);
  }
  // The one cast: the loop above gives every row of the table a value of its row's type.
  return { values: values as unknown as OptionValues, sources, problems, positionals };
}
