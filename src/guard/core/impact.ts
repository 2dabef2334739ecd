/**
 * "What breaks if I delete this?" over the guard's share index: the files under some
 * share-relative paths, the tasks and frames that read them, and the jobs and chunks
 * those frames fall in. Nothing is stat-ed: the answer comes from CVAT's task data as
 * the index holds it, so a path already deleted still answers. A directory costs one
 * pass over the index's directories (not its files) plus the files it holds.
 */
import type { LastWarmedAt } from './mapping.js';
import { affectedTask } from './mapping.js';
import type { ShareIndex } from './share-index.js';
import type { AffectedTask } from '../types.js';

/** True when share-relative `rel` is `selector` or lies under it ('' is the whole share). */
export function isUnder(rel: string, selector: string): boolean {
  return selector === '' || rel === selector || (rel.length > selector.length && rel.startsWith(selector) && rel.charCodeAt(selector.length) === 47);
}

/** Index slots of the expected files at or under any of `selectors` (share-relative, normalised). */
export function slotsUnder(index: ShareIndex, selectors: readonly string[]): number[] {
  const found = new Set<number>();
  for (const dir of index.liveDirs()) {
    // Every file of a directory under a selector matches; a selector naming a file matches only it.
    if (selectors.some((s) => isUnder(dir.rel, s))) for (const f of dir.files.values()) found.add(f);
  }
  for (const s of selectors) {
    const f = s === '' ? undefined : index.lookup(s);
    if (f !== undefined) found.add(f);
  }
  return [...found];
}

export interface TaskImpact extends AffectedTask {
  /** Distinct matched files this task reads. */
  files: number;
}

export interface ImpactResult {
  /** Slots matched (distinct files). */
  slots: number[];
  tasks: TaskImpact[];
}

/** The tasks, frames, jobs and chunks that read the expected files under `selectors`. */
export function impactOf(index: ShareIndex, selectors: readonly string[], lastWarmedAt?: LastWarmedAt): ImpactResult {
  const slots = slotsUnder(index, selectors);
  const byTask = new Map<number, { frames: Set<number>; files: number }>();
  for (const f of slots) {
    const counted = new Set<number>();
    index.forEachRef(f, (taskId, frame) => {
      let entry = byTask.get(taskId);
      if (!entry) byTask.set(taskId, (entry = { frames: new Set(), files: 0 }));
      if (frame >= 0) entry.frames.add(frame);
      if (!counted.has(taskId)) {
        counted.add(taskId);
        entry.files++;
      }
    });
  }
  const tasks: TaskImpact[] = [];
  for (const [taskId, { frames, files }] of byTask) {
    const task = index.tasks.get(taskId);
    if (task) tasks.push({ ...affectedTask(task.mapping, [...frames], lastWarmedAt), files });
  }
  tasks.sort((a, b) => a.taskId - b.taskId);
  return { slots, tasks };
}

/** impactOf's answer with the matched files of each task by name: what `impact` prints and the service serves. */
export interface ImpactAnswer {
  /** Distinct matched files read by the tasks kept. */
  files: number;
  tasks: TaskImpact[];
  /** Share-relative paths of the matched files, per task (same order as `tasks`). */
  filesOf: string[][];
}

/** impactOf, keeping only `taskIds` when given, with each task's matched files named. */
export function impactAnswer(index: ShareIndex, selectors: readonly string[], lastWarmedAt?: LastWarmedAt, taskIds?: ReadonlySet<number>): ImpactAnswer {
  const result = impactOf(index, selectors, lastWarmedAt);
  const tasks = taskIds ? result.tasks.filter((t) => taskIds.has(t.taskId)) : result.tasks;
  const position = new Map(tasks.map((t, i) => [t.taskId, i]));
  const filesOf: string[][] = tasks.map(() => []);
  let files = 0;
  for (const f of result.slots) {
    let read = false;
    for (const taskId of index.taskIdsOf(f)) {
      const at = position.get(taskId);
      if (at === undefined) continue;
      filesOf[at]!.push(index.relPath(f));
      read = true;
    }
    if (read) files++;
  }
  for (const list of filesOf) list.sort();
  return { files, tasks, filesOf };
}
