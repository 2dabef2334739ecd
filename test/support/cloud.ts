/** Cloud-storage fixtures: bucket directories with objects, and task specs reading them. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TaskSpec } from '../../src/emulator/index.js';

/** Writes `keys` as small objects under `bucketDir` (each object's bytes name its key). */
export function fillBucket(bucketDir: string, keys: readonly string[]): void {
  for (const key of keys) {
    const file = join(bucketDir, key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `object ${key}\n`);
  }
}

/** Object keys `<dir>/f_000.jpg…` for a task of `frames` images. */
export function frameKeys(dir: string, frames: number): string[] {
  return Array.from({ length: frames }, (_, i) => `${dir}/f_${String(i).padStart(3, '0')}.jpg`);
}

/** An image task on cloud storage `storageId` whose frames are `keys`. */
export function cloudTask(id: number, storageId: number, keys: readonly string[], extra: Partial<TaskSpec> = {}): TaskSpec {
  return { id, storage: 'cloud_storage', cloudStorageId: storageId, frames: [...keys], chunkSize: 4, segmentSize: 8, ...extra };
}
