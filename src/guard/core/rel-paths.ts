/**
 * Share-relative names, lexically: a name from CVAT that is absolute, has a `..` segment or
 * a NUL byte is refused before anything touches the file system (shell/paths.ts adds the
 * symlink check). Pure string work, shared by the core's index and the shell.
 */
import type { RejectedName } from '../types.js';

export type LexicalVerdict = { ok: true; rel: string } | { ok: false; reason: RejectedName['reason'] };

/**
 * Normalise a share-relative name to `a/b/c.jpg` (no leading `./`, no empty or `.`
 * segments) or refuse it. Backslashes are kept as ordinary characters (POSIX), but a
 * `..` hidden behind one (`..\\x`) is refused since CVAT may run elsewhere.
 */
export function checkName(name: string): LexicalVerdict {
  if (typeof name !== 'string' || name.length === 0) return { ok: false, reason: 'empty' };
  if (name.includes('\0')) return { ok: false, reason: 'nul' };
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name) || name.startsWith('\\')) return { ok: false, reason: 'absolute' };
  // Fast path (the usual CVAT name): nothing to normalise, no dot segments, no backslash.
  if (!name.includes('\\') && !name.includes('//') && !name.endsWith('/') && !/(^|\/)\.\.?(\/|$)/.test(name)) return { ok: true, rel: name };
  const segments: string[] = [];
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, reason: 'dot_dot' };
    if (segment.split('\\').includes('..')) return { ok: false, reason: 'backslash_escape' };
    segments.push(segment);
  }
  if (segments.length === 0) return { ok: false, reason: 'empty' };
  return { ok: true, rel: segments.join('/') };
}

/** Directory part of a normalised relative path ('' for the root). */
export function dirOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** Last segment of a normalised relative path. */
export function baseOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? rel : rel.slice(i + 1);
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
