/**
 * Access to the real CVAT artifacts in ../shared/cvat. Tests that need them skip with
 * a clear message when the folder is absent — except in CI (CI=true), where a missing
 * folder is an error, because those tests must run there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const SHARED_CVAT = resolve(process.cwd(), '../shared/cvat');

export function sharedCvatAvailable(): boolean {
  if (existsSync(SHARED_CVAT)) return true;
  if (process.env['CI']) throw new Error(`../shared/cvat is missing at ${SHARED_CVAT}; CI must run the tests that read CVAT's real artifacts`);
  console.warn(`skipping tests that read CVAT's real artifacts: ${SHARED_CVAT} is absent`);
  return false;
}

export function readSharedJson<T = unknown>(relative: string): T {
  return JSON.parse(readFileSync(resolve(SHARED_CVAT, relative), 'utf8')) as T;
}
