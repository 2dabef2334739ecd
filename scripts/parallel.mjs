// Runs npm scripts side by side and exits 1 if any failed; each one's output is printed
// whole when it ends, so the logs do not interleave — except the one after `--live`, whose
// output streams as it comes (the test run, minutes long). The static checks (typecheck,
// lint, format:check) took 62 s one after another on CI's 2 cores and ~35 s together; lint,
// one thread for ~50 s, left a core idle that the tests now use.
// Usage: node scripts/parallel.mjs [--live <script>] <script> [<script>…]
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const liveAt = args.indexOf('--live');
const live = liveAt >= 0 ? args[liveAt + 1] : undefined;
const names = args.filter((_, i) => liveAt < 0 || (i !== liveAt && i !== liveAt + 1));
if ((liveAt >= 0 && !live) || names.length + (live ? 1 : 0) === 0) {
  process.stderr.write('usage: node scripts/parallel.mjs [--live <npm script>] <npm script> [<npm script>…]\n');
  process.exit(2);
}

function run(name, streamed) {
  return new Promise((resolve) => {
    const output = [];
    const child = spawn('npm', ['run', '--silent', name], { stdio: ['ignore', streamed ? 'inherit' : 'pipe', streamed ? 'inherit' : 'pipe'] });
    child.stdout?.on('data', (d) => output.push(d));
    child.stderr?.on('data', (d) => output.push(d));
    const report = (ok, how) => {
      process.stdout.write(`\n> ${name}: ${how}\n${Buffer.concat(output).toString()}`);
      resolve(ok);
    };
    child.on('error', (error) => report(false, `could not start (${error.message})`));
    child.on('close', (code, signal) => report(code === 0, code === 0 ? 'ok' : `failed (${signal ?? `exit ${code}`})`));
  });
}

const results = await Promise.all([...(live ? [run(live, true)] : []), ...names.map((name) => run(name, false))]);
process.exit(results.every(Boolean) ? 0 : 1);
