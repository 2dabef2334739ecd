/**
 * The README's deployment sections are what the deployment tests check: they read the
 * commands and snippets from README.md itself, so the documented route is the tested one.
 */
import { readFileSync } from 'node:fs';

const README = readFileSync('README.md', 'utf8');

/** The text under a `##`/`###` heading, up to the next heading of the same or a higher level. */
export function readmeSection(heading: string): string {
  const lines = README.split('\n');
  // A `# comment` inside a code block is no heading.
  let fenced = false;
  const isHeading = lines.map((l) => {
    if (l.startsWith('```')) fenced = !fenced;
    return !fenced && /^#{1,6} /.test(l);
  });
  const start = lines.findIndex((l, i) => isHeading[i] && /^#{2,4} /.test(l) && l.replace(/^#+ /, '').startsWith(heading));
  if (start === -1) throw new Error(`README.md has no heading "${heading}"`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  const end = lines.findIndex((l, i) => i > start && isHeading[i] && new RegExp(`^#{1,${level}} `).test(l));
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

/** Fenced code blocks of a language (```sh, ```yaml) in a piece of Markdown. */
export function codeBlocks(markdown: string, language: string): string[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === language).map((m) => m[2]!);
}

/** Shell lines of a block with `\` continuations joined and trailing comments dropped. */
export function shellCommands(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line && !line.startsWith('#'));
}

/** The `-f FILE` arguments of a `docker compose` command line, in order. */
export function composeFileArgs(command: string): string[] {
  const words = command.split(/\s+/);
  return words.flatMap((word, i) => (word === '-f' || word === '--file' ? [words[i + 1]!] : []));
}
