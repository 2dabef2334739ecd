/**
 * Runs before every test file (vitest setupFiles). The files of one worker share their
 * imported modules (isolate: false), so process-wide state that src/ keeps on purpose
 * starts clean for each file: the secret registry (src/secrets.ts).
 */
import { beforeAll } from 'vitest';
import { clearSecretsForTests } from '../../src/secrets.js';

beforeAll(() => {
  clearSecretsForTests();
});
