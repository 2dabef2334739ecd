// Throw-away stores for the deep-mode benchmark: Debian's redis-server and a PostgreSQL cluster
// in a temp dir on random ports (scripts/install-deep-stores.sh installs both). The tests have
// their own (test/support/deep-stores.ts, with CVAT's full tables from the fixture); the
// benchmark needs only the columns deep mode's one query reads.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function pgBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  for (const major of readdirSync(root).sort((a, b) => Number(b) - Number(a))) {
    const dir = join(root, major, 'bin');
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  return undefined;
}

export async function startRedis(dir) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${seen}`)), 20_000);
    child.stdout.on('data', (d) => {
      seen += d;
      if (/Ready to accept connections/.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${seen}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', resolve), child.kill('SIGTERM')))),
  };
}

export async function startPostgres(dir) {
  const bin = pgBin();
  if (!bin) throw new Error('PostgreSQL not installed: run scripts/install-deep-stores.sh');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const data = join(dir, 'pgdata');
  const sockets = join(dir, 'sockets');
  mkdirSync(sockets, { recursive: true });
  let as = {};
  if (process.getuid?.() === 0) {
    // initdb refuses root.
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    for (const p of [dir, sockets]) chownSync(p, uid, gid);
    as = { uid, gid };
  }
  const env = { ...process.env, LC_ALL: 'C' };
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'root', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...as, env, stdio: 'pipe' });
  const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-o', options, '-l', join(dir, 'postgres.log'), '-w', 'start'], { ...as, env, stdio: 'pipe' });
  execFileSync(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'root', 'cvat'], { env, stdio: 'pipe' });
  return {
    url: `postgres://root@127.0.0.1:${port}/cvat`,
    stop: async () => {
      try {
        execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...as, env, stdio: 'pipe' });
      } catch {}
    },
  };
}
