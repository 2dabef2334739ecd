/**
 * pino logger shared by all components. JSON lines to stderr (stdout is kept for
 * command output such as --json and tables). Credentials are redacted twice: by
 * path for the usual suspects, and by value for anything registered in secrets.ts.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { redactSecrets } from './secrets.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to stderr (fd 2). Tests pass a capturing stream. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: 'cvat-warden',
      level: options.level ?? process.env['LOG_LEVEL'] ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['token', 'password', 'secret', 'authorization', '*.authorization', 'headers.authorization', '*.token', '*.password'],
        censor: '[REDACTED]',
      },
      hooks: { streamWrite: (line: string) => redactSecrets(line) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything: for library use and quiet tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
