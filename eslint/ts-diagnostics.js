// An ESLint rule that reports TypeScript's own errors for each file linted, from the
// program typescript-eslint already built for the type-aware rules. `npm test` used to
// build that program twice: once for `tsc -p tsconfig.test.json` (typecheck) and once for
// lint, ~17 CPU-s of a 92 CPU-s static phase on a 2-vCPU VM. The diagnostics are tsc's:
// syntactic and semantic per file (noUnused* included), plus the program's option and
// global diagnostics once, on the first file.
import ts from 'typescript';

const reportedPrograms = new WeakSet();

/** @type {import('eslint').Rule.RuleModule} */
export const tsDiagnostics = {
  meta: { type: 'problem', docs: { description: "Report TypeScript's own errors (what tsc reports) for the file" }, schema: [] },
  create(context) {
    const program = context.sourceCode.parserServices?.program;
    if (!program) throw new Error('ts-diagnostics needs type information (parserOptions.project)');
    const file = program.getSourceFile(context.physicalFilename);
    if (!file) throw new Error(`${context.physicalFilename} is not in the TypeScript program: add it to tsconfig.test.json`);
    const diagnostics = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
    if (!reportedPrograms.has(program)) {
      reportedPrograms.add(program);
      diagnostics.push(...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics());
    }
    for (const d of diagnostics) {
      if (d.category !== ts.DiagnosticCategory.Error) continue;
      const message = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      const inFile = d.file?.fileName === file.fileName && d.start !== undefined;
      const loc = inFile
        ? { start: context.sourceCode.getLocFromIndex(d.start), end: context.sourceCode.getLocFromIndex(d.start + (d.length ?? 0)) }
        : { line: 1, column: 0 };
      context.report({ loc, message: inFile || !d.file ? message : `${d.file.fileName}: ${message}` });
    }
    return {};
  },
};
