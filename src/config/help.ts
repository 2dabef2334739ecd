/**
 * Text derived from the options table: the top-level usage, each command's `--help`,
 * and the README's configuration table (`npm run docs:options` rewrites it; a test
 * fails when it drifts).
 */
import { boundsLabel, COMMANDS, defaultLabel, OPTIONS, optionsFor, type CommandName, type OptionSpec } from './options.js';

export const EXIT_CODES_LINE =
  'Exit codes: 0 ok · 1 problems found (chunks failed, files missing) · 2 usage or config error · 3 CVAT unreachable or credentials refused · 130 interrupted';

/** Help text fits an 80-column terminal: descriptions wrap under their own column. */
export const HELP_WIDTH = 80;
/** Where option descriptions start; a longer flag gets its description on the next line. */
const FLAG_COLUMN = 32;

/** Greedy word wrap to `width` columns; a word longer than that keeps a line of its own. */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

/** `  label   text…` with the text wrapped in a column starting at `column`. */
function entry(label: string, text: string, column: number, width = HELP_WIDTH): string[] {
  const head = `  ${label}`;
  const indent = ' '.repeat(column + 1);
  const body = wrapWords(text, width - indent.length);
  if (head.length <= column) return [`${head.padEnd(column)} ${body[0] ?? ''}`.trimEnd(), ...body.slice(1).map((l) => indent + l)];
  return [head, ...body.map((l) => indent + l)];
}

export function usage(version: string): string {
  const lines = [`cvat-warden ${version} — keeps CVAT's chunk cache warm and its share intact`, '', 'Usage: cvat-warden <command> [options]', '', 'Commands:'];
  for (const [name, text] of Object.entries(COMMANDS)) lines.push(...entry(name, text, 11));
  lines.push(...entry('help', 'help <command> shows the options of a command', 11), ...entry('version', 'print the version (also -V, --version)', 11));
  lines.push('', 'Run `cvat-warden <command> --help` for its options.', ...wrapWords(EXIT_CODES_LINE, HELP_WIDTH));
  return lines.join('\n');
}

/** `--max-age <duration>`, `-h, --help`, `--[no-]context-images`. */
export function flagLabel(spec: OptionSpec): string {
  if (spec.type === 'boolean') return `${spec.short ? `-${spec.short}, ` : ''}--${spec.default ? '[no-]' : ''}${spec.name}`;
  const choices = spec.type === 'string' || spec.type === 'path' ? spec.choices : undefined;
  const placeholder = spec.type === 'ids' ? 'id,…' : spec.type === 'paths' ? 'path' : choices ? choices.join('|') : spec.type;
  return `--${spec.name} <${placeholder}>`;
}

function extras(spec: OptionSpec, withEnv: boolean): string {
  const bounds = boundsLabel(spec);
  const parts = [withEnv && spec.env && `env ${spec.env}`, defaultLabel(spec) !== undefined && `default ${defaultLabel(spec)}`, bounds && bounds].filter(
    Boolean,
  );
  return parts.length ? ` (${parts.join(', ')})` : '';
}

export function commandHelp(command: CommandName): string {
  const specs = optionsFor(command);
  const lines = [`Usage: cvat-warden ${command} [options]`, '', ...wrapWords(COMMANDS[command], HELP_WIDTH), '', 'Options:'];
  for (const o of specs.filter((s) => !s.envOnly)) lines.push(...entry(flagLabel(o), `${o.help}${extras(o, true)}`, FLAG_COLUMN));
  const envOnly = specs.filter((s) => s.envOnly);
  if (envOnly.length) {
    lines.push('', 'Environment only (secrets are never taken as flags):');
    for (const o of envOnly) lines.push(...entry(o.env ?? '', o.help, FLAG_COLUMN));
  }
  if (specs.some((s) => s.name === 'access-token')) {
    lines.push(
      '',
      ...wrapWords(
        'Credentials (exactly one): CVAT_ACCESS_TOKEN or --token-file · CVAT_API_KEY or --api-key-file · CVAT_USERNAME + CVAT_PASSWORD or --password-file',
        HELP_WIDTH,
      ),
    );
  }
  return lines.join('\n');
}

const code = (text: string) => `\`${text}\``;

/** The README's configuration table, one row per option of the table. */
export function readmeOptionsTable(): string {
  const rows = ['| option | env | default | bounds | commands | meaning |', '|---|---|---|---|---|---|'];
  for (const o of OPTIONS as readonly OptionSpec[]) {
    if (o.name === 'help') continue;
    const flag = o.envOnly ? '—' : code(flagLabel(o).replace(/ <.*>$/, ''));
    const commands = o.commands.length === Object.keys(COMMANDS).length ? 'all' : o.commands.join(', ');
    const allowed = o.type === 'string' || o.type === 'path' ? o.choices : undefined;
    const choices = allowed ? `: ${allowed.map(code).join(', ')}` : '';
    const label = defaultLabel(o);
    const shown = label === undefined ? (o.type === 'boolean' ? 'off' : '—') : o.defaultText !== undefined ? label : code(label);
    const cells = [
      flag,
      o.env ? code(o.env) : '',
      shown,
      boundsLabel(o) ?? '',
      commands,
      `${o.help}${choices}${o.secret ? ' (secret: environment only, never logged)' : ''}`,
    ];
    rows.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  return rows.join('\n');
}

export const README_TABLE_START = '<!-- options:start (generated from src/config/options.ts by `npm run docs:options`) -->';
export const README_TABLE_END = '<!-- options:end -->';

/** The README with its options block replaced by the current table. */
export function withOptionsTable(readme: string): string {
  const start = readme.indexOf(README_TABLE_START);
  const end = readme.indexOf(README_TABLE_END);
  if (start < 0 || end < start) throw new Error(`README has no ${README_TABLE_START} … ${README_TABLE_END} block`);
  return `${readme.slice(0, start + README_TABLE_START.length)}\n${readmeOptionsTable()}\n${readme.slice(end)}`;
}
