/**
 * Read-only view of CVAT's database: which segment each job reads (the REST API does not
 * say; `JobReadSerializer` has no segment id) and each task's data id. The session is made
 * read-only before any query (`SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`, then
 * checked with `SHOW transaction_read_only`) and every statement has a deadline
 * (`statement_timeout`). Queries go through CVAT's own indexes: Django indexes every foreign
 * key (`engine_segment.task_id`, `engine_job.segment_id`) and the primary keys.
 * Column names follow Django's (`engine_<model>`, foreign key `x` → `x_id`), as in CVAT's
 * fixture `tests/python/shared/assets/cvat_db/data.json` (2.73.0).
 */
import pg from 'pg';
import { describeError } from '../errors.js';
import type { JobSegment } from './keys.js';
import { StoreError } from './cache-reader.js';
import type { StoreUrl } from './store-url.js';

/** Task ids per query: one `= ANY($1)` array stays small. */
export const TASKS_PER_QUERY = 500;

const JOBS_OF_TASKS = `
SELECT j.id AS job_id, j.segment_id, s.task_id, s.type, s.start_frame, s.stop_frame, t.data_id
  FROM engine_segment s
  JOIN engine_job j ON j.segment_id = s.id
  JOIN engine_task t ON t.id = s.task_id
 WHERE s.task_id = ANY($1::int[])`;

interface JobRow {
  job_id: number | string;
  segment_id: number | string;
  task_id: number | string;
  type: string;
  start_frame: number | string;
  stop_frame: number | string;
  data_id: number | string | null;
}

export interface SegmentReaderOptions {
  store: StoreUrl;
  /** Connect deadline and statement_timeout. @default 5000 */
  timeoutMs?: number;
}

export class SegmentReader {
  readonly label: string;
  private readonly options: SegmentReaderOptions;
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private closed = false;
  /** Queries sent (the benchmark's cost measure). */
  queries = 0;

  constructor(options: SegmentReaderOptions) {
    this.options = options;
    this.label = options.store.safeLabel;
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? 5000;
  }

  private async connection(): Promise<pg.Client> {
    if (this.closed) throw new StoreError(`${this.label}: closed`);
    if (this.client) return this.client;
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.store.url.toString(),
      connectionTimeoutMillis: this.timeoutMs,
      statement_timeout: this.timeoutMs,
      query_timeout: this.timeoutMs + 1000,
      application_name: 'cvat-warden (read-only)',
    });
    // A dropped connection is re-made on the next query; its 'error' must not crash the process.
    client.on('error', () => {
      if (this.client === client) this.client = undefined;
    });
    try {
      await client.connect();
      await client.query('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY');
      this.queries++;
      const check = await client.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
      this.queries++;
      if (check.rows[0]?.transaction_read_only !== 'on') throw new Error('the session did not become read-only');
    } catch (error) {
      await client.end().catch(() => undefined);
      throw new StoreError(`${this.label}: cannot open a read-only session (${describeError(error)})`);
    }
    this.client = client;
    return client;
  }

  /** Job → segment (and data id) for every job of these tasks. */
  async jobsOfTasks(taskIds: readonly number[]): Promise<JobSegment[]> {
    const out: JobSegment[] = [];
    for (let start = 0; start < taskIds.length; start += TASKS_PER_QUERY) {
      const client = await this.connection();
      const ids = taskIds.slice(start, start + TASKS_PER_QUERY);
      this.queries++;
      let rows: JobRow[];
      try {
        rows = (await client.query<JobRow>(JOBS_OF_TASKS, [ids])).rows;
      } catch (error) {
        if (this.client === client) {
          this.client = undefined;
          await client.end().catch(() => undefined);
        }
        throw new StoreError(`${this.label}: job/segment query failed (${describeError(error)})`);
      }
      for (const r of rows) {
        out.push({
          jobId: Number(r.job_id),
          segmentId: Number(r.segment_id),
          taskId: Number(r.task_id),
          dataId: r.data_id === null ? null : Number(r.data_id),
          segmentType: r.type,
          startFrame: Number(r.start_frame),
          stopFrame: Number(r.stop_frame),
        });
      }
    }
    return out;
  }

  /** Whether the session refuses writes (doctor's check). */
  async readOnly(): Promise<boolean> {
    const client = await this.connection();
    this.queries++;
    const r = await client.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
    return r.rows[0]?.transaction_read_only === 'on';
  }

  /**
   * Whether the role itself could write to the tables deep mode reads (a superuser can): the
   * session refuses writes either way, but a read-only role (README) is a second lock.
   */
  async roleMayWrite(): Promise<boolean> {
    const client = await this.connection();
    this.queries++;
    const r = await client.query<{ may: boolean }>(
      `SELECT bool_or(has_table_privilege(t, 'INSERT, UPDATE, DELETE, TRUNCATE')) AS may FROM unnest(ARRAY['engine_job', 'engine_segment', 'engine_task']) AS t`,
    );
    return r.rows[0]?.may === true;
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
