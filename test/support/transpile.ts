/**
 * Child-process tests run plain node, so they need JavaScript: this transpiles a
 * src/ module and its relative imports with TypeScript (always current, unlike a
 * possibly stale dist/) into a directory inside the repository, where bare imports
 * (chokidar, pino, prom-client…) resolve from node_modules.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface TranspileOptions {
  /**
   * Refuse a module graph that imports anything but node builtins at run time (a child
   * that must load without node_modules, e.g. the ledger crash fixture).
   */
  builtinsOnly?: boolean;
}

/** Transpiles `entries` (repo-relative .ts paths under src/); returns the out dir and a remover. */
export async function transpileSrc(
  entries: readonly string[],
  { builtinsOnly = false }: TranspileOptions = {},
): Promise<{ outDir: string; js: (entry: string) => string; remove: () => Promise<void> }> {
  const cache = join(repoRoot, 'node_modules/.cache');
  await mkdir(cache, { recursive: true });
  const outDir = await mkdtemp(join(cache, 'cvat-warden-child-'));
  const srcRoot = join(repoRoot, 'src');
  const queue = entries.map((e) => join(repoRoot, e));
  const done = new Set<string>();
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    for (const m of outputText.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (builtinsOnly && !spec.startsWith('node:'))
        throw new Error(`${relative(repoRoot, file)} imports ${spec} at run time; this child can only load node builtins`);
    }
    const out = join(outDir, relative(srcRoot, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, outputText);
  }
  return {
    outDir,
    js: (entry) => join(outDir, relative('src', entry)).replace(/\.ts$/, '.js'),
    remove: () => rm(outDir, { recursive: true, force: true }),
  };
}
