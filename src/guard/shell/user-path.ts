/**
 * A path an admin typed (`impact PATH`), turned into a share-relative selector, or
 * refused with the reason. Relative paths are relative to the share root; absolute ones
 * must lie under it (as given or as its real path). Nothing is followed: a `..` that
 * leaves the root, or any existing component that is a symlink, is refused — the
 * answer would otherwise be about files outside what the guard indexes. Components
 * that do not exist (a file already deleted) are taken as written.
 */
import type { Stats } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { checkName } from './paths.js';

export type UserPathVerdict = { ok: true; rel: string } | { ok: false; problem: string };

const show = (p: string) => JSON.stringify(p.length > 200 ? `${p.slice(0, 200)}…` : p);

export async function resolveUserPath(shareRoot: string, input: string): Promise<UserPathVerdict> {
  if (input.length === 0 || input.includes('\0')) return { ok: false, problem: `${show(input)}: not a path` };
  const root = path.resolve(shareRoot);
  const realRoot = await realpath(root).catch(() => root);
  let rest: string;
  if (path.isAbsolute(input)) {
    const normal = path.normalize(input);
    const base = [root, realRoot].find((r) => normal === r || normal.startsWith(r.endsWith('/') ? r : `${r}/`));
    if (base === undefined) return { ok: false, problem: `${show(input)} is outside the share directory ${root}` };
    rest = normal.slice(base.length);
    if (input.split('/').includes('..'))
      return { ok: false, problem: `${show(input)}: ".." segments are not accepted (give the path inside the share directory)` };
  } else rest = input;
  if (rest.replace(/^\/+|\/+$/g, '') === '' || rest === '.') return { ok: true, rel: '' };
  const verdict = checkName(rest.replace(/^\/+/, ''));
  if (!verdict.ok)
    return {
      ok: false,
      problem:
        verdict.reason === 'dot_dot' || verdict.reason === 'backslash_escape'
          ? `${show(input)}: ".." segments are not accepted (give the path inside the share directory)`
          : `${show(input)}: not a share path (${verdict.reason})`,
    };
  // Walk from the real root, one component at a time, never through a symlink.
  let at = realRoot;
  for (const segment of verdict.rel.split('/')) {
    at = path.join(at, segment);
    let st: Stats;
    try {
      st = await lstat(at);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') break; // gone already: the index still knows what read it
      return { ok: false, problem: `${show(input)}: cannot look at ${show(path.relative(realRoot, at))} (${code ?? 'error'})` };
    }
    if (st.isSymbolicLink())
      return {
        ok: false,
        problem: `${show(input)} goes through the symlink ${show(path.relative(realRoot, at))}: not followed (name the path inside the share that CVAT's tasks use)`,
      };
  }
  return { ok: true, rel: verdict.rel };
}
