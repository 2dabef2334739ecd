/**
 * GET /impact?path=<share-relative>…&task=<id>…: `cvat-warden impact` asks the running
 * service, whose guard already holds the share index, instead of rebuilding it from every
 * task's data (20 s at 1,000,000 files; this answers in milliseconds, docs/benchmarks.md).
 * The query is bounded and checked like a typed path: share-relative names only, no `..`,
 * no absolute path. The answer names share paths and tasks, as /status already does.
 */
import { checkName, type ShareGuard } from '../guard/index.js';

/** More paths than a person types; a script deleting more asks again. */
export const IMPACT_MAX_PATHS = 100;
export const IMPACT_MAX_TASKS = 1000;
/** PATH_MAX: no share path is longer. */
const MAX_PATH_LENGTH = 4096;

export interface ImpactQuery {
  /** Share-relative, normalised; '' is the whole share. */
  paths: string[];
  taskIds: number[];
}

export type ImpactReply = { status: 200; body: unknown } | { status: 400 | 429 | 503; body: { error: string } };

/** The query of GET /impact, or every problem with it. */
export function parseImpactQuery(url: string | undefined): ImpactQuery | { errors: string[] } {
  const params = new URL(url ?? '/', 'http://warden.invalid').searchParams;
  const errors: string[] = [];
  const rawPaths = params.getAll('path');
  const rawTasks = params.getAll('task');
  if (rawPaths.length > IMPACT_MAX_PATHS) errors.push(`at most ${IMPACT_MAX_PATHS} path parameters`);
  if (rawTasks.length > IMPACT_MAX_TASKS) errors.push(`at most ${IMPACT_MAX_TASKS} task parameters`);
  if (rawPaths.length === 0 && rawTasks.length === 0) errors.push('give at least one path= (share-relative) or task=');
  const paths: string[] = [];
  for (const raw of rawPaths.slice(0, IMPACT_MAX_PATHS)) {
    if (raw === '') {
      paths.push('');
      continue;
    }
    if (raw.length > MAX_PATH_LENGTH) {
      errors.push(`a path longer than ${MAX_PATH_LENGTH} characters`);
      continue;
    }
    const verdict = checkName(raw);
    if (verdict.ok) paths.push(verdict.rel);
    else errors.push(`path ${JSON.stringify(raw.slice(0, 200))}: ${verdict.reason}`);
  }
  const taskIds: number[] = [];
  for (const raw of rawTasks.slice(0, IMPACT_MAX_TASKS)) {
    const id = /^[1-9]\d{0,9}$/.test(raw) ? Number(raw) : NaN;
    if (Number.isSafeInteger(id)) taskIds.push(id);
    else errors.push(`task ${JSON.stringify(raw.slice(0, 40))}: not a task id`);
  }
  if (errors.length) return { errors };
  // --task without paths: everything the tasks read.
  return { paths: paths.length ? paths : [''], taskIds };
}

/**
 * Keeps GET /impact from taking the event loop: after a query that took T ms, the next is
 * refused (429) for T ms, so queries get at most half the loop however fast they come
 * (a whole-share query at a million files costs a few hundred ms; /healthz must still answer).
 */
export class ImpactPacer {
  #freeAt = 0;
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Runs `query` unless the last one's cost is not yet paid back. */
  run(query: () => ImpactReply): ImpactReply {
    const started = this.#now();
    if (started < this.#freeAt) {
      const waitS = Math.max(1, Math.ceil((this.#freeAt - started) / 1000));
      return { status: 429, body: { error: `an impact query ran just now; ask again in ${waitS} s` } };
    }
    const reply = query();
    const ended = this.#now();
    this.#freeAt = ended + (ended - started);
    return reply;
  }
}

/** GET /impact, from the guard's index once the first discovery has put every task in it. */
export function impactRoute(guard: Pick<ShareGuard, 'queries'>, indexComplete: () => boolean): (query: ImpactQuery) => ImpactReply {
  const pacer = new ImpactPacer();
  return (query) => {
    if (!indexComplete()) return { status: 503, body: { error: 'the first discovery has not finished: the share index is not complete yet' } };
    return pacer.run(() => {
      const answer = guard.queries.impact(query.paths, query.taskIds.length > 0 ? new Set(query.taskIds) : undefined);
      return { status: 200, body: { paths: query.paths, ...answer } };
    });
  };
}
