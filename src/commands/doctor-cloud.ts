/**
 * doctor: every cloud storage the account's tasks use (task `data_cloud_storage_id`, CVAT ≥ 2.44)
 * — its status as CVAT reports it, and whether content-v2 answers (one LIST of one entry) — with
 * a fix line. Nothing is added when no task reads a cloud storage.
 */
import { listDirectory, storageStatus } from '../cloud/index.js';
import type { CvatClient } from '../cvat/client.js';
import { describeError } from '../errors.js';
import type { DoctorAdd } from './doctor.js';

/** Storages checked at most (each costs a status call and one LIST). */
const MAX_STORAGES = 50;

export async function checkCloudStorages(client: CvatClient, add: DoctorAdd, signal: AbortSignal): Promise<void> {
  const tasksOf = new Map<number, number[]>();
  try {
    for await (const task of client.tasks({ sort: 'id' }, signal)) {
      if (!task.ok) continue;
      const id = task.value.data_cloud_storage_id;
      if (typeof id === 'number') tasksOf.set(id, [...(tasksOf.get(id) ?? []), task.value.id].slice(0, 20));
    }
  } catch (error) {
    add('cloud storages', 'warn', `could not list tasks to find their cloud storages: ${describeError(error)}`);
    return;
  }
  const ids = [...tasksOf.keys()].sort((a, b) => a - b);
  for (const id of ids.slice(0, MAX_STORAGES)) {
    const name = `cloud storage ${id}`;
    const tasks = `tasks ${tasksOf.get(id)!.join(', ')}`;
    const { status, problem } = await storageStatus(client, id, signal);
    if (status === 'FORBIDDEN') {
      add(
        name,
        'fail',
        `CVAT may not read the bucket (FORBIDDEN); ${tasks} cannot build chunks`,
        `renew the storage's credentials in CVAT (Cloud Storages → storage ${id} → Update)`,
      );
      continue;
    }
    if (status === 'NOT_FOUND') {
      add(
        name,
        'fail',
        `CVAT finds no bucket (NOT_FOUND); ${tasks} cannot build chunks`,
        'restore the bucket, or fix its name/endpoint in the storage settings in CVAT',
      );
      continue;
    }
    if (status === 'unknown') {
      add(name, 'warn', `status not readable: ${problem ?? 'no answer'}`, 'check that this account may view the cloud storage in CVAT');
      continue;
    }
    const listing = await listDirectory(client, id, '', {
      take: (() => {
        let left = 1;
        return () => left-- > 0;
      })(),
      signal,
    });
    if (listing.problem)
      add(
        name,
        'warn',
        `AVAILABLE, but content-v2 fails: ${listing.problem}`,
        'the guard cannot see objects disappear; check the storage in CVAT (Cloud Storages → browse)',
      );
    else add(name, 'ok', `AVAILABLE, content-v2 answers; used by ${tasks}`);
  }
  if (ids.length > MAX_STORAGES) add('cloud storages', 'warn', `${ids.length - MAX_STORAGES} more cloud storages not checked`);
}
