/**
 * pino logger shared by all components, on stderr (stdout is kept for command output
 * such as --json and tables). Two formats: `json` (one object per line, for collectors)
 * and `pretty` (pino-pretty's formatter, for people); the default is pretty when stderr
 * is a terminal, json otherwise — decided here and nowhere else. On a terminal, lines
 * are written above the progress bar (`StatusLine`) so the two never interleave.
 * Credentials are redacted twice: by path for the usual suspects, and by value for
 * anything registered in secrets.ts.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { createRequire } from 'node:module';
import { redactSecrets } from './secrets.js';
import wrapAnsi from 'wrap-ansi';

export type { Logger } from 'pino';
export type LogFormat = 'pretty' | 'json';

/** A stream that may be a terminal: stderr, or a test's stand-in. */
export type TerminalStream = NodeJS.WritableStream & { isTTY?: boolean; hasColors?: () => boolean };

export interface LoggerOptions {
  /** From --log-level / LOG_LEVEL (the options table holds the default). */
  level: string;
  /** Undefined: pretty when `terminal` is a TTY, json otherwise. */
  format?: LogFormat | undefined;
  /** Where lines go; defaults to stderr (fd 2). Tests pass a capturing stream. */
  destination?: DestinationStream;
  /** The stream logs go to when no destination is given, for the TTY check. @default process.stderr */
  terminal?: TerminalStream;
}

/**
 * The bottom line of a terminal, owned by whoever shows progress there. Everything else
 * written to the terminal goes through `writeAbove`, which clears the line, writes, and
 * redraws it.
 */
export class StatusLine {
  #text = '';
  readonly #stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream) {
    this.#stream = stream;
  }

  get active(): boolean {
    return this.#text !== '';
  }

  /** The terminal's width now (it follows resizes), or undefined when the stream does not say. */
  get columns(): number | undefined {
    const columns = (this.#stream as { columns?: number }).columns;
    return typeof columns === 'number' && columns > 0 ? columns : undefined;
  }

  /** Draws the line; cut to the width so it never wraps (a wrapped line could not be redrawn in place). */
  show(text: string): void {
    const columns = this.columns;
    this.#text = columns ? (wrapAnsi(text, columns - 1, { hard: true, trim: false }).split('\n')[0] ?? '') : text;
    this.#stream.write(`\r${this.#text}\x1b[K`);
  }

  /**
   * Writes log output above the line. On a terminal of known width each line is wrapped to
   * it (wrap-ansi: it measures and breaks text with colour escapes and wide characters
   * correctly, which a plain slice gets wrong), so no line is wider than the terminal.
   */
  writeAbove(text: string): void {
    const columns = this.columns;
    const chunk = columns ? wrapLines(text, columns) : text;
    if (!this.#text) {
      this.#stream.write(chunk);
      return;
    }
    this.#stream.write(`\r\x1b[K${chunk}${chunk.endsWith('\n') ? '' : '\n'}${this.#text}`);
  }

  /** Leaves the last state of the line on screen and moves below it. */
  finish(): void {
    if (!this.#text) return;
    this.#text = '';
    this.#stream.write('\n');
  }
}

function wrapLines(text: string, columns: number): string {
  const ending = text.endsWith('\n') ? '\n' : '';
  return wrapAnsi(ending ? text.slice(0, -1) : text, columns, { hard: true }) + ending;
}

const statusLines = new WeakMap<NodeJS.WritableStream, StatusLine>();

/** The one status line of a terminal stream, shared by the logger and the progress bar. */
export function statusLineOf(stream: NodeJS.WritableStream): StatusLine {
  let line = statusLines.get(stream);
  if (!line) statusLines.set(stream, (line = new StatusLine(stream)));
  return line;
}

export function resolveLogFormat(format: LogFormat | undefined, terminal: { isTTY?: boolean }): LogFormat {
  return format ?? (terminal.isTTY ? 'pretty' : 'json');
}

function destinationFor(options: LoggerOptions, format: LogFormat, terminal: TerminalStream): DestinationStream {
  const sink: DestinationStream =
    options.destination ?? (terminal.isTTY ? { write: (line) => statusLineOf(terminal).writeAbove(line) } : pino.destination({ fd: 2, sync: true }));
  if (format === 'json') return sink;
  // Loaded only when used: JSON logging (the service, CI) does not pay for it.
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  const pretty = prettyFactory({
    colorize: !options.destination && terminal.isTTY === true && (terminal.hasColors?.() ?? false),
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,name',
    singleLine: true,
  });
  return { write: (line: string) => sink.write(pretty(line)) };
}

export function createLogger(options: LoggerOptions): Logger {
  const terminal: TerminalStream = options.terminal ?? process.stderr;
  const format = resolveLogFormat(options.format, options.destination ? {} : terminal);
  return pino(
    {
      name: 'cvat-warden',
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['token', 'password', 'secret', 'authorization', '*.authorization', 'headers.authorization', '*.token', '*.password'],
        censor: '[REDACTED]',
      },
      hooks: { streamWrite: (line: string) => redactSecrets(line) },
    },
    destinationFor(options, format, terminal),
  );
}

/** A logger that drops everything: for library use and quiet tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
