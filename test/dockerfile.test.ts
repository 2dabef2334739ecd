/**
 * No Docker engine runs on the build machines, so the image is not built here; these
 * checks hold the Dockerfile to its invariants instead.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';

const dockerfile = readFileSync('Dockerfile', 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const runtime = instructions.slice(instructions.findLastIndex((l) => /^FROM\s/i.test(l)));

describe('Dockerfile', () => {
  it('is multi-stage on a current Node LTS pinned by digest (the tag in a comment), the same base in every stage', () => {
    const froms = instructions.filter((l) => /^FROM\s/i.test(l));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const image = /^ARG NODE_IMAGE=(node:(22|24)-bookworm-slim)@sha256:[0-9a-f]{64}$/m.exec(dockerfile);
    expect(image, 'ARG NODE_IMAGE=node:<LTS>-bookworm-slim@sha256:<digest>').not.toBeNull();
    expect(dockerfile).toMatch(new RegExp(`^#.*${image![1]!.replace('.', '\\.')}`, 'm'));
    for (const from of froms) expect(from).toMatch(/^FROM \$\{NODE_IMAGE\} AS \w+$/);
  });

  it('installs production dependencies in an earlier stage: no npm runs in, or ships with, the runtime stage', () => {
    const deps = instructions.slice(instructions.findIndex((l) => / AS deps$/.test(l)));
    expect(deps.some((l) => /^RUN npm ci .*--omit=dev/.test(l))).toBe(true);
    expect(runtime.filter((l) => /^RUN\s/i.test(l) && /\bnp[mx]\b(?!\/)/.test(l.replace(/\/usr\/local\/\S+/g, '')))).toEqual([]);
    expect(runtime.some((l) => /^RUN rm -rf .*\/usr\/local\/lib\/node_modules\/npm .*\/usr\/local\/bin\/npm /.test(l))).toBe(true);
    expect(runtime.some((l) => /^COPY --from=deps \/app\/node_modules/.test(l))).toBe(true);
    expect(runtime.some((l) => /^COPY --from=build \/app\/dist/.test(l))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const users = runtime.filter((l) => /^USER\s/i.test(l));
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^USER\s+(root|0)(:|$)/i);
  });

  it('has an exec-form HEALTHCHECK (dist/healthcheck.js, which follows CVAT_WARDEN_LISTEN) and an exec-form node CMD running the service', () => {
    const health = runtime.find((l) => /^HEALTHCHECK\s/i.test(l));
    expect(health).toMatch(/CMD \["node", "\/app\/dist\/healthcheck\.js"\]$/);
    expect(existsSync('src/healthcheck.ts')).toBe(true);
    const cmd = runtime.findLast((l) => /^CMD\s/i.test(l));
    expect(cmd).toBe('CMD ["node", "/app/dist/cli.js", "run"]');
  });

  it('bakes in no secrets', () => {
    for (const line of instructions.filter((l) => /^(ENV|ARG|LABEL)\s/i.test(l))) {
      expect(line).not.toMatch(/(TOKEN|PASSWORD|API_KEY|SECRET)\s*=/i);
    }
    expect(dockerfile).not.toMatch(/COPY\s+.*\.(env|pem|key)\b/);
    expect(dockerfile).not.toMatch(/COPY\s+\.\s/); // no blanket copy that could pick up local secrets
  });

  it('mounts the share read-only in the compose override', () => {
    const compose = readFileSync('deploy/docker-compose.cvat-warden.yml', 'utf8');
    expect(compose).toMatch(/cvat_share:\/home\/django\/share:ro/);
    expect(compose).not.toMatch(/CVAT_ACCESS_TOKEN:\s*\S/);
    // The merged result is checked against CVAT's real files in test/compose.test.ts.
  });

  it('carries OCI labels that match package.json (version, source repository, license)', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; license: string; repository: { url: string } };
    const labels = new Map<string, string>();
    for (const line of runtime.filter((l) => /^LABEL\s/i.test(l))) {
      for (const [, key, value] of line.matchAll(/([\w.-]+)="([^"]*)"/g)) labels.set(key!, value!);
    }
    const version = /^ARG VERSION=(\S+)$/m.exec(dockerfile)?.[1];
    expect(version).toBe(pkg.version);
    expect(labels.get('org.opencontainers.image.version')).toBe('${VERSION}');
    expect(labels.get('org.opencontainers.image.source')).toBe(pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, ''));
    expect(labels.get('org.opencontainers.image.licenses')).toBe(pkg.license);
    for (const key of ['title', 'description', 'url', 'documentation']) expect(labels.get(`org.opencontainers.image.${key}`), key).toBeTruthy();
  });
});

/**
 * The HEALTHCHECK's script, run as the image runs it (node dist/healthcheck.js) against a
 * real server: it asks the address CVAT_WARDEN_LISTEN names, the wildcard on loopback.
 */
describe('dist/healthcheck.js', () => {
  const run = (env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number | null; stderr: string }>((done, fail) => {
      const child = spawn(process.execPath, ['dist/healthcheck.js'], { env: { PATH: process.env['PATH'], ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', fail);
      child.on('exit', (code) => done({ code, stderr }));
    });

  it('passes when /healthz at CVAT_WARDEN_LISTEN answers 200, fails on another status or address', async () => {
    let status = 200;
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await run({ CVAT_WARDEN_LISTEN: `0.0.0.0:${port}` })).toEqual({ code: 0, stderr: '' });
      expect(await run({ CVAT_WARDEN_LISTEN: `127.0.0.1:${port}` })).toMatchObject({ code: 0 });
      status = 503;
      expect(await run({ CVAT_WARDEN_LISTEN: `0.0.0.0:${port}` })).toMatchObject({ code: 1, stderr: expect.stringContaining('answered 503') });
      expect(await run({ CVAT_WARDEN_LISTEN: 'no-port' })).toMatchObject({ code: 1, stderr: expect.stringContaining('not host:port') });
    } finally {
      await new Promise((r) => server.close(r));
    }
    // Nothing listens there any more.
    expect(await run({ CVAT_WARDEN_LISTEN: `127.0.0.1:${port}` })).toMatchObject({ code: 1 });
  });
});
