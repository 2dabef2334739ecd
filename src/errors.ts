/**
 * Errors with a stable machine-readable `code`, so the CLI maps them to exit codes
 * and tests assert on codes rather than on wording. Messages never carry credentials:
 * anything that might echo a URL or header goes through `redactSecrets` first.
 */
import { redactSecrets } from './secrets.js';

export type WardenErrorCode =
  | 'CONFIG_INVALID' // exit 2
  | 'CVAT_UNREACHABLE' // exit 3
  | 'CVAT_AUTH_REFUSED' // exit 3
  | 'CVAT_FORBIDDEN' // exit 3
  | 'CVAT_UNSUPPORTED_VERSION' // exit 3
  | 'CVAT_TIMEOUT' // exit 3: a request outlived its deadline (limits.ts)
  | 'CVAT_BAD_RESPONSE'
  | 'CVAT_HTTP'
  | 'SHARE_UNAVAILABLE'
  | 'PATH_REJECTED'
  | 'STATE_IO'
  | 'ABORTED';

export class WardenError extends Error {
  override name = 'WardenError';
  readonly code: WardenErrorCode;

  constructor(code: WardenErrorCode, message: string, options?: { cause?: unknown }) {
    super(redactSecrets(message), options);
    this.code = code;
  }
}

/** A configuration problem: carries every issue found, so the user fixes them in one go. */
export class ConfigError extends WardenError {
  override name = 'ConfigError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems.map(redactSecrets);
  }
}

/** An HTTP answer from CVAT that the caller did not expect; `status` drives retry policy. */
export class CvatHttpError extends WardenError {
  override name = 'CvatHttpError';
  readonly status: number;
  readonly path: string;

  constructor(status: number, path: string, detail: string) {
    super('CVAT_HTTP', `CVAT answered ${status} for ${path}${detail ? `: ${detail}` : ''}`);
    this.status = status;
    this.path = path;
  }
}

/** Exit codes; `interrupted` is the shell's 128 + SIGINT, for a stop by Ctrl-C or SIGTERM mid-work. */
export const EXIT = { ok: 0, problems: 1, usage: 2, cvatUnreachable: 3, interrupted: 130 } as const;

export function exitCodeFor(error: unknown): number {
  if (!(error instanceof WardenError)) return EXIT.problems;
  switch (error.code) {
    case 'CONFIG_INVALID':
      return EXIT.usage;
    case 'CVAT_UNREACHABLE':
    case 'CVAT_AUTH_REFUSED':
    case 'CVAT_FORBIDDEN':
    case 'CVAT_UNSUPPORTED_VERSION':
    case 'CVAT_TIMEOUT':
      return EXIT.cvatUnreachable;
    default:
      return EXIT.problems;
  }
}

/** A short, safe description of any thrown value (for logs and summaries). */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return redactSecrets(typeof code === 'string' && !(error instanceof WardenError) ? `${code}: ${error.message}` : error.message);
  }
  return redactSecrets(String(error));
}
