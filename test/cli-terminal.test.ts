/**
 * On a terminal: human-readable log lines (pino-pretty), a progress bar, and the two
 * never interleaved. The end-to-end case runs the built CLI under a real pseudo-terminal
 * (`script -qc …`) against the emulator, as issue 9's "Done when" asks.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createProgressReporter, progressLine } from '../src/commands/progress.js';
import { DEMO_CREDENTIALS, startEmulator, syntheticDeployment, type Emulator } from '../src/emulator/index.js';
import { createLogger, resolveLogFormat, statusLineOf } from '../src/log.js';
import { clearSecretsForTests, registerSecret } from '../src/secrets.js';
import { CLI } from './support/cli.js';
import { useTempDir } from './support/tmp.js';

const ESC = String.fromCharCode(27);

/** What a terminal shows for this output: \r returns to column 0, ESC[K clears to the end of the line, other escapes are colours. */
function render(output: string): string[] {
  const lines: string[] = [];
  let line: string[] = [];
  let col = 0;
  const text = output.replace(new RegExp(`${ESC}\\[(?!K)[0-9;]*[A-Za-z]`, 'g'), '');
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (text.startsWith(`${ESC}[K`, i)) {
      line.length = col;
      i += 2;
    } else if (ch === '\r') col = 0;
    else if (ch === '\n') {
      lines.push(line.join(''));
      line = [];
      col = 0;
    } else line[col++] = ch;
  }
  if (line.length) lines.push(line.join(''));
  return lines;
}

class FakeTerminal extends Writable {
  isTTY = true;
  output = '';
  columns: number | undefined;
  constructor(columns?: number) {
    super();
    this.columns = columns;
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.output += String(chunk);
    callback();
  }
  hasColors(): boolean {
    return false;
  }
}

const BAR = /^\[[#.]{24}\] \d+\/\d+ · warmed/;
const isJsonLine = (line: string) => /^\s*\{/.test(line);

describe('logs and progress on a terminal', () => {
  it('picks pretty on a terminal and json otherwise, unless told', () => {
    expect(resolveLogFormat(undefined, { isTTY: true })).toBe('pretty');
    expect(resolveLogFormat(undefined, {})).toBe('json');
    expect(resolveLogFormat('json', { isTTY: true })).toBe('json');
  });

  it('writes log lines above the progress bar, never into it', () => {
    const terminal = new FakeTerminal();
    const logger = createLogger({ terminal, level: 'info' });
    let t = 0;
    const progress = createProgressReporter(logger, terminal, () => (t += 1000));
    logger.info({ tasks: 2 }, 'warming');
    progress.update({ total: 10, warm: 3, fresh: 0, failed: 0, stuck: 0, inFlight: 1, bytes: 0 });
    logger.warn({ jobId: 7 }, 'chunk failed');
    progress.update({ total: 10, warm: 10, fresh: 0, failed: 0, stuck: 0, inFlight: 0, bytes: 0 });
    progress.done();
    terminal.write('Done in 1s\n');
    const screen = render(terminal.output);
    expect(screen.filter(isJsonLine)).toEqual([]);
    expect(screen[0]).toMatch(/INFO: warming/);
    expect(screen[1]).toMatch(/WARN: chunk failed .*"jobId":7/);
    expect(screen[2]).toMatch(BAR);
    expect(screen[2]).toMatch(/10\/10/);
    expect(screen[3]).toBe('Done in 1s');
    expect(screen).toHaveLength(4);
  });

  it('fits the bar to the terminal width, dropping the least useful fields first, and wraps log lines to it', () => {
    const p = { total: 123_456, warm: 100_000, fresh: 20_000, failed: 1_234, stuck: 56, inFlight: 2, bytes: 0 };
    const stats = { done: 121_290, rate: 1234.5, eta: 4000 };
    const full = progressLine(p, stats, undefined);
    expect(full).toMatch(BAR);
    for (const columns of [20, 40, 60, 80, 100, 200]) {
      const text = progressLine(p, stats, columns);
      expect(text.length, `${columns} columns: ${text}`).toBeLessThan(columns);
      expect(text).toContain('121290/123456');
    }
    // Fewer fields as it narrows; the rate goes first, eta and failed last.
    expect(progressLine(p, stats, 80)).not.toContain('/s');
    expect(progressLine(p, stats, 80)).toMatch(/failed 1234 .*eta 67m/);
    expect(progressLine(p, stats, 40)).toMatch(/^\[[#.]+\] 121290\/123456 · eta 67m$/);

    const terminal = new FakeTerminal(80);
    const logger = createLogger({ terminal, level: 'info' });
    let t = 0;
    const progress = createProgressReporter(logger, terminal, () => (t += 1000));
    progress.update(p);
    logger.info({ cvat: 'http://127.0.0.1:41234', version: '2.73.0', indexChunks: true, rangeRequests: true, note: 'x'.repeat(60) }, 'connected to CVAT');
    progress.update({ ...p, warm: 101_000 });
    progress.done();
    const screen = render(terminal.output);
    expect(screen.filter((l) => l.length > 80)).toEqual([]);
    expect(screen.filter((l) => /^\[[#.]+\] \d+\/123456/.test(l))).toHaveLength(1);
    expect(screen.join('')).toContain('x'.repeat(60));
    // Whatever text the line is given, it is cut to the width: it can always be redrawn in place.
    const narrow = new FakeTerminal(40);
    statusLineOf(narrow).show('word '.repeat(30));
    expect(render(narrow.output).every((l) => l.length < 40)).toBe(true);
  });

  it('redacts secrets in pretty lines too', () => {
    const terminal = new FakeTerminal();
    registerSecret('pat-pretty-secret-123');
    try {
      createLogger({ terminal, level: 'info' }).warn({ url: 'https://cvat/?t=pat-pretty-secret-123', token: 'abc' }, 'odd answer');
    } finally {
      clearSecretsForTests();
    }
    expect(terminal.output).toMatch(/WARN: odd answer/);
    expect(terminal.output).not.toContain('pat-pretty-secret-123');
    expect(terminal.output).not.toContain('abc');
  });

  it('keeps json lines when asked for them on a terminal, still above the bar', () => {
    const terminal = new FakeTerminal();
    const logger = createLogger({ terminal, level: 'info', format: 'json' });
    let t = 0;
    const progress = createProgressReporter(logger, terminal, () => (t += 1000));
    progress.update({ total: 2, warm: 1, fresh: 0, failed: 0, stuck: 0, inFlight: 1, bytes: 0 });
    logger.info('hello');
    progress.done();
    const screen = render(terminal.output);
    expect(JSON.parse(screen[0]!)).toMatchObject({ msg: 'hello' });
    expect(screen[1]).toMatch(BAR);
  });
});

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasScript) console.warn('skipping the pseudo-terminal test: `script` (util-linux) is not installed');

describe.skipIf(!hasScript)('warm under a pseudo-terminal (script -qc)', () => {
  const tmp = useTempDir('warden-tty-');
  let emulator: Emulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });

  it('shows pretty log lines, a progress bar and the summary: no JSON line, nothing interleaved', async () => {
    emulator = await startEmulator({
      tasks: syntheticDeployment({ tasks: 2, framesPerTask: 300 }),
      auth: { users: [{ username: 'admin', isAdmin: true, accessTokens: [DEMO_CREDENTIALS.accessToken] }] },
      buildTimeMs: 15,
    });
    // A few dropped connections mid-run: the engine logs each retry while the bar is on screen.
    emulator.faults.add({ match: 'chunk', kind: 'reset', times: 3, skip: 6 });
    // An 80-column terminal: the bar and every log line fit it (issue 22: a ~115-column bar wrapped and stacked).
    const command = `stty cols 80 rows 24; ${process.execPath} ${CLI} warm --all --state-dir ${join(tmp.path, 'state')} --concurrency 2 --log-level debug`;
    const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], {
        env: { PATH: process.env['PATH'], TERM: 'xterm', CVAT_URL: emulator!.url, CVAT_ACCESS_TOKEN: DEMO_CREDENTIALS.accessToken },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += String(d)));
      child.stderr.on('data', (d: Buffer) => (output += String(d)));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
    const screen = render(result.output);
    expect(result.code, result.output).toBe(0);
    expect(screen.filter(isJsonLine), 'raw JSON log lines on the terminal').toEqual([]);
    expect(screen.some((l) => /INFO: connected to CVAT/.test(l))).toBe(true);
    expect(
      screen.some((l) => /DEBUG: chunk request failed/.test(l)),
      'retries logged during the bar',
    ).toBe(true);
    // The bar's last state stays on screen, complete, on a line of its own; no log text got mixed into it.
    expect(
      screen.filter((l) => l.length > 80),
      'lines wider than the terminal',
    ).toEqual([]);
    const bars = screen.filter((l) => /^\[[#.]{6,24}\] \d+\/\d+ · /.test(l));
    expect(bars).toHaveLength(1);
    expect(bars[0]).toMatch(/\] (\d+)\/\1 · warmed \d+/);
    for (const line of screen) if (/(INFO|DEBUG|WARN):/.test(line)) expect(line, 'a log line with bar text').not.toMatch(/\[[#.]{5,}/);
    const summary = screen.findIndex((l) => /^Done in \S+: \d+ warmed/.test(l));
    expect(summary, 'summary after the bar').toBeGreaterThan(screen.indexOf(bars[0]!));
  }, 90_000);
});
