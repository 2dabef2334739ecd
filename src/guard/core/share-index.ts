/**
 * The index of expected share files, laid out for a million files: one slot per
 * distinct share-relative path, with typed arrays for the baseline stat, the status
 * and one (task, frame) reference; further references (honeypot placeholders, files
 * shared by tasks) go to a small side map. Paths are stored as directory id + base
 * name (bytes in a name arena, not a string per file), and directories hold a name → slot
 * map, which is exactly what a directory watch event needs. Jobs and chunks are computed from the task's job list on demand.
 */
import { continuePathKey, pathKey, type PathKey } from './baseline-table.js';
import { DeviceColumn } from './device-column.js';
import { DirFiles } from './dir-files.js';
import type { TaskMapping } from './mapping.js';
import { NameArena } from './name-arena.js';
import { baseOf, dirOf, joinRel } from './rel-paths.js';
import type { FileRole, FileStat, IndexWarning, RejectedName } from '../types.js';

/** Per-file state (a const object, not an enum: erasable syntax only). */
export const FileStatus = { unknown: 0, ok: 1, pending: 2, deleted: 3, moved: 4, modified: 5 } as const;
export type FileStatusCode = (typeof FileStatus)[keyof typeof FileStatus];

const ROLES: readonly FileRole[] = ['frame', 'video', 'related'];

export interface DirRecord {
  id: number;
  rel: string;
  /** base name → file slot */
  files: DirFiles;
  /** Cached absolute prefix ("<root>/<rel>/") for fast scans. */
  absPrefix?: string;
  /** The same prefix as UTF-8 (scans on the stat thread send bytes). */
  absPrefixBytes?: Buffer;
  /** pathKey of "<rel>/" ('' at the root): a slot's key runs on from it over the name's bytes. */
  keyPrefix?: PathKey;
}

export interface IndexedTask {
  mapping: TaskMapping;
  signature: string;
  /** Parallel arrays: every (file slot, relative frame) reference of the task (-1 frame = video). */
  fileIds: Int32Array;
  frames: Int32Array;
  distinctFiles: number;
  rejected: RejectedName[];
  warnings: IndexWarning[];
}

export class ShareIndex {
  readonly dirs: Array<DirRecord | undefined> = [];
  readonly #dirIds = new Map<string, number>();
  readonly #freeDirs: number[] = [];
  readonly tasks = new Map<number, IndexedTask>();

  #capacity = 0;
  #slots = 0;
  #live = 0;
  readonly #free: number[] = [];
  /** Base name of each live slot (a slot without one is free). */
  readonly names = new NameArena();
  dirOf = new Int32Array(0);
  role = new Uint8Array(0);
  status = new Uint8Array(0);
  /** Bumped on every applied observation: an async stat that returns after a newer one is dropped. */
  gen = new Uint32Array(0);
  bSize = new Float64Array(0);
  bMtime = new Float64Array(0);
  bIno = new Float64Array(0);
  /** Device of each baseline: a byte per slot (device-column.ts). */
  readonly bDev = new DeviceColumn();
  refTask = new Int32Array(0);
  refFrame = new Int32Array(0);
  readonly #extraRefs = new Map<number, number[]>();

  get liveFiles(): number {
    return this.#live;
  }

  /** Highest slot + 1: iterate 0..slotCount and skip slots that are not `isLive`. */
  get slotCount(): number {
    return this.#slots;
  }

  #grow(min: number): void {
    if (min <= this.#capacity) return;
    const capacity = Math.max(min, this.#capacity * 2, 1024);
    const grow = <T extends Int32Array | Uint8Array | Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.dirOf = grow(this.dirOf, (n) => new Int32Array(n));
    this.role = grow(this.role, (n) => new Uint8Array(n));
    this.status = grow(this.status, (n) => new Uint8Array(n));
    this.gen = grow(this.gen, (n) => new Uint32Array(n));
    this.bSize = grow(this.bSize, (n) => new Float64Array(n));
    this.bMtime = grow(this.bMtime, (n) => new Float64Array(n));
    this.bIno = grow(this.bIno, (n) => new Float64Array(n));
    this.bDev.grow(capacity);
    this.names.grow(capacity);
    this.refTask = grow(this.refTask, (n) => new Int32Array(n));
    this.refFrame = grow(this.refFrame, (n) => new Int32Array(n));
    this.#capacity = capacity;
  }

  dirId(rel: string): number | undefined {
    return this.#dirIds.get(rel);
  }

  #ensureDir(rel: string): DirRecord {
    const existing = this.#dirIds.get(rel);
    if (existing !== undefined) return this.dirs[existing]!;
    const id = this.#freeDirs.pop() ?? this.dirs.length;
    const record: DirRecord = { id, rel, files: new DirFiles(this.names) };
    this.dirs[id] = record;
    this.#dirIds.set(rel, id);
    return record;
  }

  /** Slot of a share-relative path, if expected. */
  lookup(rel: string): number | undefined {
    const id = this.#dirIds.get(dirOf(rel));
    return id === undefined ? undefined : this.dirs[id]!.files.get(baseOf(rel));
  }

  /** The slot holds an expected file (it was not freed). */
  isLive(f: number): boolean {
    return this.names.has(f);
  }

  /** Base name of a live slot. */
  nameOf(f: number): string {
    return this.names.name(f);
  }

  relPath(f: number): string {
    return joinRel(this.dirs[this.dirOf[f]!]!.rel, this.names.name(f));
  }

  /** Absolute path of a slot under `root` (the directory prefix is built once per directory). */
  absPath(f: number, root: string): string {
    const dir = this.dirs[this.dirOf[f]!]!;
    dir.absPrefix ??= dir.rel === '' ? `${root}/` : `${root}/${dir.rel}/`;
    return dir.absPrefix + this.names.name(f);
  }

  /** Writes `absPath(f, root)` as UTF-8 into `target` at `at`; returns the offset after it (undefined: no room). */
  writeAbsPath(f: number, root: string, target: Uint8Array, at: number): number | undefined {
    const dir = this.dirs[this.dirOf[f]!]!;
    dir.absPrefixBytes ??= Buffer.from(dir.rel === '' ? `${root}/` : `${root}/${dir.rel}/`, 'utf8');
    const prefix = dir.absPrefixBytes;
    if (at + prefix.length + this.names.byteLength(f) > target.length) return undefined;
    target.set(prefix, at);
    return this.names.copyTo(f, target, at + prefix.length);
  }

  /**
   * `pathKey(relPath(f))` into `out` (hi, lo) without building the path: the directory's
   * key is computed once and continued over the name's bytes in the arena (a non-ASCII
   * name takes the string path). At 1,000,000 files the strings cost ~90 MB of garbage.
   */
  pathKeyOf(f: number, out: Uint32Array): void {
    const dir = this.dirs[this.dirOf[f]!]!;
    dir.keyPrefix ??= pathKey(dir.rel === '' ? '' : `${dir.rel}/`);
    const bytes = this.names.view(f);
    if (continuePathKey(dir.keyPrefix, bytes, this.names.viewStart, this.names.viewEnd, out)) return;
    const key = pathKey(this.relPath(f));
    out[0] = key.hi;
    out[1] = key.lo;
  }

  /** Every live slot, grouped by directory (scans stat a directory's files together). */
  liveSlotsByDir(): Int32Array {
    const ids = new Int32Array(this.#live);
    let n = 0;
    for (const dir of this.dirs) if (dir) for (const f of dir.files.values()) ids[n++] = f;
    return n === ids.length ? ids : ids.subarray(0, n);
  }

  roleOf(f: number): FileRole {
    return ROLES[this.role[f]!] ?? 'frame';
  }

  hasBaseline(f: number): boolean {
    return this.bSize[f]! >= 0;
  }

  baseline(f: number): FileStat | null {
    if (!this.hasBaseline(f)) return null;
    return { size: this.bSize[f]!, mtimeMs: this.bMtime[f]!, ino: this.bIno[f]!, dev: this.bDev.get(f) };
  }

  setBaseline(f: number, st: FileStat): void {
    this.bSize[f] = st.size;
    this.bMtime[f] = st.mtimeMs;
    this.bIno[f] = st.ino;
    this.bDev.set(f, st.dev);
  }

  /** Add a reference (task, frame) to `rel`, creating the slot if needed. Returns the slot and whether it is new. */
  addRef(rel: string, taskId: number, frame: number, role: FileRole): { f: number; created: boolean } {
    const dir = this.#ensureDir(dirOf(rel));
    const name = baseOf(rel);
    let f = dir.files.get(name);
    if (f !== undefined) {
      if (this.refTask[f] === -1) {
        this.refTask[f] = taskId;
        this.refFrame[f] = frame;
      } else {
        let extra = this.#extraRefs.get(f);
        if (!extra) this.#extraRefs.set(f, (extra = []));
        extra.push(taskId, frame);
      }
      return { f, created: false };
    }
    f = this.#free.pop();
    if (f === undefined) {
      f = this.#slots++;
      this.#grow(this.#slots);
    }
    this.#live++;
    this.names.set(f, name);
    dir.files.add(f, name);
    this.dirOf[f] = dir.id;
    this.role[f] = Math.max(0, ROLES.indexOf(role));
    this.status[f] = FileStatus.unknown;
    this.bSize[f] = -1;
    this.refTask[f] = taskId;
    this.refFrame[f] = frame;
    return { f, created: true };
  }

  /** Visit every (taskId, frame) reference of a slot. */
  forEachRef(f: number, visit: (taskId: number, frame: number) => void): void {
    if (this.refTask[f] !== -1) visit(this.refTask[f]!, this.refFrame[f]!);
    const extra = this.#extraRefs.get(f);
    if (extra) for (let i = 0; i < extra.length; i += 2) visit(extra[i]!, extra[i + 1]!);
  }

  /** Frames per task that read the file. */
  refsByTask(f: number): Map<number, number[]> {
    const byTask = new Map<number, number[]>();
    this.forEachRef(f, (taskId, frame) => {
      let frames = byTask.get(taskId);
      if (!frames) byTask.set(taskId, (frames = []));
      if (frame >= 0) frames.push(frame);
    });
    return byTask;
  }

  taskIdsOf(f: number): number[] {
    return [...this.refsByTask(f).keys()].sort((a, b) => a - b);
  }

  #removeRef(f: number, taskId: number, frame: number): boolean {
    if (this.refTask[f] === taskId && this.refFrame[f] === frame) {
      const extra = this.#extraRefs.get(f);
      if (extra && extra.length >= 2) {
        this.refFrame[f] = extra.pop()!;
        this.refTask[f] = extra.pop()!;
        if (extra.length === 0) this.#extraRefs.delete(f);
      } else {
        this.refTask[f] = -1;
      }
    } else {
      const extra = this.#extraRefs.get(f);
      if (extra) {
        for (let i = 0; i < extra.length; i += 2) {
          if (extra[i] === taskId && extra[i + 1] === frame) {
            extra.splice(i, 2);
            break;
          }
        }
        if (extra.length === 0) this.#extraRefs.delete(f);
      }
    }
    return this.refTask[f] === -1;
  }

  /**
   * Drop a task's references. `onOrphan(f)` runs for each slot left without references,
   * before it is freed. Returns the directories that no longer hold expected files.
   */
  removeTask(taskId: number, onOrphan: (f: number) => void): DirRecord[] {
    const task = this.tasks.get(taskId);
    if (!task) return [];
    this.tasks.delete(taskId);
    const emptied: DirRecord[] = [];
    for (let i = 0; i < task.fileIds.length; i++) {
      const f = task.fileIds[i]!;
      if (!this.names.has(f)) continue;
      if (!this.#removeRef(f, taskId, task.frames[i]!)) continue;
      onOrphan(f);
      const dir = this.dirs[this.dirOf[f]!]!;
      dir.files.delete(this.names.name(f));
      this.names.clear(f);
      this.status[f] = FileStatus.unknown;
      this.gen[f] = this.gen[f]! + 1;
      this.#free.push(f);
      this.#live--;
      if (dir.files.size === 0) {
        emptied.push(dir);
        this.dirs[dir.id] = undefined;
        this.#dirIds.delete(dir.rel);
        this.#freeDirs.push(dir.id);
      }
    }
    return emptied;
  }

  /** Live directory records. */
  *liveDirs(): Generator<DirRecord> {
    for (const dir of this.dirs) if (dir) yield dir;
  }

  get dirCount(): number {
    return this.#dirIds.size;
  }
}
