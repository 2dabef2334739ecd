#!/usr/bin/env node
/**
 * cvat-warden command line: parse the command, load one validated config, run it,
 * map the outcome to an exit code (0 ok, 1 problems, 2 usage/config, 3 CVAT
 * unreachable or credentials refused). First Ctrl-C stops cleanly, a second exits now.
 */
import { loadConfig } from './config/index.js';
import { optionsFor, type CommandName } from './config/options.js';
import { ConfigError, EXIT, WardenError, describeError, exitCodeFor } from './errors.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { packageVersion } from './version.js';
import type { CommandContext } from './commands/context.js';

const COMMANDS: Record<CommandName, string> = {
  warm: 'warm the chunks the annotation UI will read, once, then exit',
  check: 'check that every share file of cache-dependent tasks is in place, once, then exit',
  run: 'the service: discover, warm and keep warm, guard the share, serve /metrics',
  doctor: 'check the setup (CVAT, credentials, share, limits) and explain each problem',
  emulate: 'start the bundled CVAT emulator with a sample deployment',
  demo: 'emulator + warm + guard end to end, for a first look without a CVAT',
  restore: 'put missing share files back from the vault (--all, --task ID or --path P)',
  backup: "download CVAT's own verified backup of share tasks (--all, --task ID or --project ID)",
};

function usage(): string {
  const lines = [`cvat-warden ${packageVersion()} — keeps CVAT's chunk cache warm and its share intact`, '', 'Usage: cvat-warden <command> [options]', '', 'Commands:'];
  for (const [name, text] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(9)} ${text}`);
  lines.push('', 'Run `cvat-warden <command> --help` for its options.', 'Exit codes: 0 ok · 1 problems found (chunks failed, files missing) · 2 usage or config error · 3 CVAT unreachable or credentials refused');
  return lines.join('\n');
}

function commandHelp(command: CommandName): string {
  const lines = [`Usage: cvat-warden ${command} [options]`, '', COMMANDS[command], '', 'Options:'];
  for (const o of optionsFor(command)) {
    const flag = `--${o.name}${o.type === 'boolean' ? '' : ` <${o.type === 'ids' ? 'id,…' : o.type}>`}`;
    const extras = [o.env && `env ${o.env}`, o.default !== undefined && `default ${o.default}`].filter(Boolean).join(', ');
    lines.push(`  ${flag.padEnd(30)} ${o.help}${extras ? ` (${extras})` : ''}`);
  }
  if (['warm', 'check', 'run', 'doctor', 'backup'].includes(command)) {
    lines.push('', 'Credentials (exactly one): CVAT_ACCESS_TOKEN or --token-file · CVAT_API_KEY or --api-key-file · CVAT_USERNAME + CVAT_PASSWORD or --password-file');
  }
  return lines.join('\n');
}

async function dispatch(command: CommandName, argv: string[], context: CommandContext): Promise<number> {
  const config = loadConfig(command, argv);
  if (config.help) {
    context.stdout.write(`${commandHelp(command)}\n`);
    return EXIT.ok;
  }
  context.logger.level = config.logLevel;
  switch (command) {
    case 'warm':
      return (await import('./commands/warm.js')).runWarm(config, context);
    default:
      return (await import('./commands/registry.js')).runCommand(command, config, context);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (!(name in COMMANDS)) {
    process.stderr.write(`cvat-warden: unknown command "${name}"\n\n${usage()}\n`);
    return EXIT.usage;
  }
  const logger = createLogger();
  const metrics = createMetrics({ buildInfo: { version: packageVersion() }, defaultMetrics: name === 'run' });
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`cvat-warden: second ${signal}, exiting now\n`);
      process.exit(130);
    }
    logger.warn({ signal }, 'stopping: finishing in-flight requests (send again to exit at once)');
    controller.abort();
  };
  // `run` has its own shutdown coordinator (ordered steps under a deadline).
  const ownSignals = name !== 'run';
  if (ownSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    return await dispatch(name as CommandName, rest, { stdout: process.stdout, stderr: process.stderr, logger, metrics, signal: controller.signal });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`cvat-warden ${name}: ${error.message}\n`);
    } else if (error instanceof WardenError) {
      logger.error({ code: error.code }, error.message);
      process.stderr.write(`cvat-warden ${name}: ${error.message}\n`);
    } else {
      logger.error({ err: describeError(error) }, 'unexpected error');
      process.stderr.write(`cvat-warden ${name}: unexpected error: ${describeError(error)}\n`);
    }
    return exitCodeFor(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}


main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The service has closed everything it owns; do not wait on stray handles.
    if (process.argv[2] === 'run') process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`cvat-warden: ${describeError(error)}\n`);
    process.exitCode = 1;
  },
);
