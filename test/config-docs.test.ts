/**
 * The README's configuration table and every command's `--help` (from the built CLI)
 * agree with src/config/options.ts, row by row; no src file restates a table default.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { README_TABLE_END, README_TABLE_START, readmeOptionsTable } from '../src/config/help.js';
import { COMMAND_NAMES, defaultLabel, boundsLabel, OPTIONS, optionsFor, type OptionSpec } from '../src/config/options.js';
import { parseOptions } from '../src/config/parse.js';
import * as presets from '../src/config/presets.js';
import { runCli } from './support/cli.js';

const README = readFileSync('README.md', 'utf8');

function readmeRows(): string[] {
  const start = README.indexOf(README_TABLE_START);
  const end = README.indexOf(README_TABLE_END);
  expect(start, 'README has the generated options block').toBeGreaterThanOrEqual(0);
  return README.slice(start + README_TABLE_START.length, end)
    .trim()
    .split('\n');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Code names that match an option's but mean something else (checked by hand; each with why). */
const SAME_NAME_OTHER_THING = [
  // The emulator's library API (tests build emulators with explicit values); its command line is held to the table below.
  { path: join('src', 'emulator', 'emulator.ts'), option: 'build-time', why: 'library default of the emulator' },
  { path: join('src', 'emulator', 'emulator.ts'), option: 'port', why: 'library default: any free port, for tests' },
];

describe('options table, README and --help agree', () => {
  it('the README configuration table is the one generated from the table (npm run docs:options)', () => {
    const expected = readmeOptionsTable().split('\n');
    const actual = readmeRows();
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) expect(actual[i], `README options row ${i}`).toBe(expected[i]);
    // And every row of the table is in it, with its env variable and default.
    for (const spec of OPTIONS as readonly OptionSpec[]) {
      if (spec.name === 'help') continue;
      const row = actual.find((r) => (spec.envOnly ? r.includes(`\`${spec.env}\``) : r.includes(`--${spec.name}\``) || r.includes(`--[no-]${spec.name}\``)));
      expect(row, `README row for ${spec.name}`).toBeDefined();
      if (spec.env) expect(row).toContain(`\`${spec.env}\``);
      const label = defaultLabel(spec);
      if (label) expect(row).toContain(label);
    }
  });

  it.each(COMMAND_NAMES)('`%s --help` lists exactly its options, with env, default and bounds', async (command) => {
    const help = await runCli([command, '--help']);
    expect(help.code).toBe(0);
    // An option's entry is its flag line and the lines its description wraps onto (indented further).
    const entries = help.stdout.split('\n').reduce<string[]>((all, l) => {
      if (/^ {3,}\S/.test(l) && all.length) all.push(`${all.pop()!} ${l.trim()}`);
      else all.push(l);
      return all;
    }, []);
    const flagLines = entries.filter((l) => /^\s+(-\w, )?--/.test(l));
    expect(help.stdout.split('\n').filter((l) => l.length > 80)).toEqual([]);
    const shown = flagLines.map((l) => /--(?:\[no-\])?([a-z][a-z-]*)/.exec(l)![1]!);
    const specs = optionsFor(command);
    expect(shown.sort()).toEqual(
      specs
        .filter((s) => !s.envOnly)
        .map((s) => s.name)
        .sort(),
    );
    for (const spec of specs) {
      if (spec.envOnly) {
        expect(help.stdout, `${command}: ${spec.env}`).toMatch(new RegExp(`^\\s+${spec.env}(\\s|$)`, 'm'));
        continue;
      }
      const line = flagLines.find((l) => new RegExp(`^\\s+(-\\w, )?--(\\[no-\\])?${spec.name}(?![\\w-])`).test(l))!;
      expect(line, `${command} --${spec.name}`).toContain(spec.help);
      if (spec.env) expect(line).toContain(`env ${spec.env}`);
      const label = defaultLabel(spec);
      if (label) expect(line).toContain(`default ${label}`);
      const bounds = boundsLabel(spec);
      if (bounds) expect(line).toContain(bounds);
    }
  });

  it('no source file outside the table restates a default of the table as a ?? fallback', () => {
    // Every static number default (ms for durations; small counts like 2 are everyday numbers), by the camelCase name code gives it.
    const { values } = parseOptions('warm', [], {});
    const numeric = (OPTIONS as readonly OptionSpec[]).flatMap((spec) => {
      const value = (values as Record<string, unknown>)[spec.name];
      return (spec.type === 'duration' || spec.type === 'integer') && typeof value === 'number' && value >= 100
        ? [{ spec, value, word: spec.name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) }]
        : [];
    });
    // Every numeric option with a default, by the camelCase name code gives it and by the name without its unit.
    const withDefault = (OPTIONS as readonly OptionSpec[]).flatMap((spec) => {
      const value = (values as Record<string, unknown>)[spec.name];
      if ((spec.type !== 'duration' && spec.type !== 'integer') || typeof value !== 'number') return [];
      const word = spec.name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
      return [{ spec, value, word: spec.type === 'duration' ? `${word}(?:Ms)?` : word }];
    });
    const offenders: string[] = [];
    for (const file of sourceFiles('src')) {
      if (file.endsWith(join('config', 'options.ts'))) continue;
      const text = readFileSync(file, 'utf8');
      for (const line of text.split('\n')) {
        for (const match of line.matchAll(/\?\?\s*([\d_]+(?:\s*\*\s*[\d_]+)*)(?![\d_.])/g)) {
          const value = match[1]!.split('*').reduce((product, factor) => product * Number(factor.trim().replace(/_/g, '')), 1);
          const hit = numeric.find((n) => n.value === value && line.toLowerCase().includes(n.word.toLowerCase()));
          if (hit) offenders.push(`${file}: "${line.trim()}" repeats the default of --${hit.spec.name}`);
          // A fallback of another value for an option with a default is a second default (adaptive.ts once
          // fell back to a 1,000 ms cold threshold where the table says 250ms, and the service passed neither).
          const rival = withDefault.find((n) => n.value !== value && new RegExp(`\\b${n.word}\\b`, 'i').test(line));
          if (!hit && rival && !SAME_NAME_OTHER_THING.some((a) => file.includes(a.path) && a.option === rival.spec.name))
            offenders.push(`${file}: "${line.trim()}" gives --${rival.spec.name} a second default (${value}; the table says ${rival.value})`);
        }
      }
      for (const spec of OPTIONS as readonly OptionSpec[]) {
        if (spec.type === 'duration' && spec.default && text.includes(`'${spec.default}'`))
          offenders.push(`${file}: '${spec.default}' repeats the default of --${spec.name}`);
      }
    }
    expect(offenders).toEqual([]);
    // The warming controller takes its constants from one preset module (adaptive-tuning.ts) and the
    // admin's settings from the table: no numeric fallback of its own (`?? 0`, "none", aside).
    for (const file of ['src/daemon/adaptive.ts', 'src/daemon/warm-control.ts', 'src/warm/engine.ts'])
      expect(readFileSync(file, 'utf8'), file).not.toMatch(/\?\?\s*(?!0\b)\d/);
    // The emulator's command line takes every value from the table (it once said 1500 ms where the table says 300ms).
    expect(readFileSync('src/emulator/cli.ts', 'utf8')).not.toMatch(/\?\?\s*['\d]/);
  });

  it('no source file outside the preset module restates a component default as a ?? fallback or a @default copy', () => {
    // Every number of src/config/presets.ts, by its key.
    const numeric = Object.entries(presets).flatMap(([group, values]) =>
      Object.entries(values as Record<string, unknown>).flatMap(([word, value]) =>
        typeof value === 'number' && Number.isFinite(value) ? [{ group, word, value }] : [],
      ),
    );
    expect(numeric.length).toBeGreaterThan(10); // the check has something to find
    const asNumber = (text: string) => text.split('*').reduce((product, factor) => product * Number(factor.trim().replace(/_/g, '')), 1);
    const offenders: string[] = [];
    for (const file of sourceFiles('src')) {
      if (file.endsWith(join('config', 'presets.ts'))) continue;
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        for (const match of line.matchAll(/(?:\?\?|@default)\s*([\d_]+(?:\s*\*\s*[\d_]+)*)(?![\d_.])/g)) {
          const value = asNumber(match[1]!);
          // A fallback names what it defaults (`options.journalFlushMs ?? 20`); a @default line sits
          // on its option (≥ 100 there: small numbers are everyday).
          const named = (n: { word: string; value: number }) => (match[0].startsWith('@') ? n.value >= 100 : line.toLowerCase().includes(n.word.toLowerCase()));
          const hit = numeric.find((n) => n.value === value && named(n));
          if (hit && (!match[0].startsWith('@') || file.includes(join('src', 'guard')) || /daemon[/\\](service|scheduler)\.ts$/.test(file)))
            offenders.push(`${file}: "${line.trim()}" repeats ${hit.group}.${hit.word}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
