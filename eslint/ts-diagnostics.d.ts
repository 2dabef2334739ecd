import type { Rule } from 'eslint';

/** Reports TypeScript's own errors for the file linted (see ts-diagnostics.js). */
export declare const tsDiagnostics: Rule.RuleModule;
