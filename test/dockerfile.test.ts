/**
 * No Docker engine runs on the build machines, so the image is not built here; these
 * checks hold the Dockerfile to its invariants instead.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dockerfile = readFileSync('Dockerfile', 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const runtime = instructions.slice(instructions.findLastIndex((l) => /^FROM\s/i.test(l)));

describe('Dockerfile', () => {
  it('is multi-stage on a current Node LTS and installs only production dependencies in the runtime stage', () => {
    expect(instructions.filter((l) => /^FROM\s/i.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/ARG NODE_VERSION=(22|24)\b/);
    expect(runtime.some((l) => /^RUN .*npm ci .*--omit=dev/.test(l))).toBe(true);
    expect(runtime.some((l) => /^COPY --from=build \/app\/dist/.test(l))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const users = runtime.filter((l) => /^USER\s/i.test(l));
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^USER\s+(root|0)(:|$)/i);
  });

  it('has an exec-form HEALTHCHECK against /healthz and an exec-form node CMD running the service', () => {
    const health = runtime.find((l) => /^HEALTHCHECK\s/i.test(l));
    expect(health).toMatch(/CMD \["node",/);
    expect(health).toContain('/healthz');
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
