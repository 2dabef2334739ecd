/**
 * How to run this very CLI again from a shell, for hints a user pastes: `cvat-warden`
 * when that name on the user's PATH is this CLI, else `node /abs/path/dist/cli.js`.
 * PATH entries npm adds while running a script (`…/node_modules/.bin`, as in `npm run
 * demo` or `npx`) do not count: the user's own shell does not have them.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const real = (path: string): string | undefined => {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
};

/** Single-quoted for a POSIX shell when it holds anything but plain path characters. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

export function selfCommand(script: string | undefined = process.argv[1], env: NodeJS.ProcessEnv = process.env, node = process.execPath): string {
  const self = script ? real(script) : undefined;
  if (!self) return 'cvat-warden';
  // The first cvat-warden on the user's PATH, if it is this one.
  if (onPath('cvat-warden', env) === self) return 'cvat-warden';
  return `${onPath('node', env) === real(node) ? 'node' : shellQuote(node)} ${shellQuote(self)}`;
}

/** Where `name` resolves on PATH (realpath), skipping npm's script-time directories. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (!dir || /node_modules[\\/]\.bin[\\/]?$/.test(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return real(candidate);
    } catch {
      continue;
    }
  }
  return undefined;
}
