// The lint rule that stands in for `tsc -p tsconfig.test.json` in `npm test`
// (eslint/ts-diagnostics.js) reports what tsc reports, on a small real project: a type
// error and an unused local are errors, a clean file has none.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { tsDiagnostics } from '../eslint/ts-diagnostics.js';
import { useTempDir } from './support/tmp.js';

const dir = useTempDir('warden-ts-diagnostics-');

describe('warden/ts-diagnostics', () => {
  it('reports tsc errors of the file with their codes and places, and nothing for a clean file', async () => {
    const options = { strict: true, noUnusedLocals: true, types: [], lib: ['ES2023'], target: 'ES2023', module: 'NodeNext', skipLibCheck: true };
    writeFileSync(join(dir.path, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, include: ['*.ts'] }));
    writeFileSync(join(dir.path, 'good.ts'), 'export const answer: number = 42;\n');
    writeFileSync(join(dir.path, 'bad.ts'), "export function f(): number {\n  const unused = 1;\n  return 'text';\n}\n");
    const eslint = new ESLint({
      cwd: dir.path,
      overrideConfigFile: true,
      overrideConfig: [
        {
          files: ['**/*.ts'],
          languageOptions: { parser: tseslint.parser, parserOptions: { project: './tsconfig.json', tsconfigRootDir: dir.path } },
          plugins: { warden: { rules: { 'ts-diagnostics': tsDiagnostics } } },
          rules: { 'warden/ts-diagnostics': 'error' },
        },
      ],
    });
    const results = await eslint.lintFiles(['good.ts', 'bad.ts']);
    const byFile = Object.fromEntries(
      results.map((r) => [r.filePath.slice(dir.path.length + 1), r.messages.map((m) => `${m.line}:${m.column} ${m.message.split(':')[0]}`)]),
    );
    expect(byFile['good.ts']).toEqual([]);
    expect(byFile['bad.ts']).toEqual(['2:9 TS6133', '3:3 TS2322']);
  });
});
