/**
 * A CVAT double built from CVAT's own recorded data (`../shared/cvat/<version>/tests/python/
 * shared/assets`: tasks.json and jobs.json as the API answers, cvat_db/data.json for
 * segments, images, related files and deleted frames) — not our emulator. It answers the
 * list, detail and meta endpoints from the recordings and checks every data request the
 * way CVAT does: a job chunk index outside `[0, ceil(len(frame_set) / chunk_size))` or a
 * legacy number outside the segment's task chunks is a 400 (frame_provider.py), a context
 * image for a frame outside the job's segment is a 400 (`validate_frame_number`), one for a
 * frame without related files a 404 (views.py `_DataGetter`), audio a 400.
 *
 * Its oracle of what the UI reads is computed from the DB fixture alone.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readSharedJson } from './shared-cvat.js';

interface Row {
  model: string;
  pk: number;
  fields: Record<string, unknown>;
}
interface Page {
  results: Array<Record<string, unknown>>;
}

const LIVE = new Set(['new', 'in progress', 'rejected']);

/** Django's comma list ("1,2,3", "[]", "10") as numbers. */
const numbers = (raw: unknown): number[] =>
  (typeof raw === 'string' ? raw : '')
    .replace(/[[\]\s]/g, '')
    .split(',')
    .filter(Boolean)
    .map(Number);

export interface RecordedCvat {
  url: string;
  version: string;
  /** Data requests answered, with their status (and the `Prefer` header of previews). */
  requests: Array<{ path: string; query: string; status: number; prefer?: string }>;
  /** Keys read successfully (chunks and context images). */
  warm: Set<string>;
  /** What the UI reads: every job's segment (`liveOnly`: segments with a job new, in progress or rejected). */
  uiReads(options: { liveOnly: boolean }): Set<string>;
  close(): Promise<void>;
}

export async function startRecordedCvat(folder: 'v2.73.0' | 'v2.14.4'): Promise<RecordedCvat> {
  const assets = `${folder}/tests/python/shared/assets`;
  const tasks = (readSharedJson(`${assets}/tasks.json`) as Page).results;
  const jobs = (readSharedJson(`${assets}/jobs.json`) as Page).results;
  const db = readSharedJson(`${assets}/cvat_db/data.json`) as Row[];
  const rows = (model: string) => new Map(db.filter((r) => r.model === model).map((r) => [r.pk, r.fields]));
  const dbTasks = rows('engine.task');
  const dbData = rows('engine.data');
  const dbSegments = rows('engine.segment');
  const dbJobs = rows('engine.job');
  const images = db.filter((r) => r.model === 'engine.image');
  const related = db.filter((r) => r.model === 'engine.relatedfile');
  const videos = new Set(db.filter((r) => r.model === 'engine.video').map((r) => r.fields['data'] as number));
  const legacy = folder === 'v2.14.4';
  const version = legacy ? '2.14.4' : '2.73.0';

  /** related_files per image pk (2.73: `images` m2m; 2.14: `primary_image`). */
  const relatedOf = new Map<number, number>();
  for (const r of related) {
    const owners = Array.isArray(r.fields['images']) ? (r.fields['images'] as number[]) : [r.fields['primary_image'] as number];
    for (const pk of owners) relatedOf.set(pk, (relatedOf.get(pk) ?? 0) + 1);
  }
  const taskData = (taskId: number) => {
    const task = dbTasks.get(taskId);
    const dataId = task?.['data'] as number | null | undefined;
    const data = dataId == null ? undefined : dbData.get(dataId);
    if (!task || dataId == null || !data) return undefined;
    const filter = data['frame_filter'];
    const step = Number(/step=(\d+)/.exec(typeof filter === 'string' ? filter : '')?.[1] ?? 1);
    const frames = images.filter((i) => i.fields['data'] === dataId).sort((a, b) => (a.fields['frame'] as number) - (b.fields['frame'] as number));
    return { task, dataId, data, step, frames, audio: task['media_type'] === 'audio', video: videos.has(dataId) };
  };
  /** Relative task frames of a segment (SPECIFIC_FRAMES: `frames` are absolute). */
  const segmentFrames = (segmentId: number): number[] => {
    const seg = dbSegments.get(segmentId)!;
    const d = taskData(seg['task'] as number)!;
    const start = d.data['start_frame'] as number;
    if (seg['type'] === 'specific_frames') return numbers(seg['frames']).map((abs) => (abs - start) / d.step);
    return Array.from({ length: (seg['stop_frame'] as number) - (seg['start_frame'] as number) + 1 }, (_, k) => (seg['start_frame'] as number) + k);
  };
  const relatedCount = (dataId: number, rel: number): number => {
    const d = [...dbTasks.keys()].map(taskData).find((x) => x?.dataId === dataId);
    const image = d?.frames[rel];
    return image ? (relatedOf.get(image.pk) ?? 0) : 0;
  };
  const chunkKeys = (jobId: number, segmentId: number): string[] => {
    const seg = dbSegments.get(segmentId)!;
    const d = taskData(seg['task'] as number)!;
    const cs = d.data['chunk_size'] as number;
    const frames = segmentFrames(segmentId);
    if (!legacy) return Array.from({ length: Math.ceil(frames.length / cs) }, (_, i) => `segment_${segmentId}_chunk_${i}`);
    const gt = dbJobs.get(jobId)?.['type'] === 'ground_truth';
    return [...new Set(frames.map((f) => Math.floor(f / cs)))].map((n) => (gt ? `job_${jobId}_chunk_${n}` : `data_${d.dataId}_chunk_${n}`));
  };

  const uiReads = ({ liveOnly }: { liveOnly: boolean }): Set<string> => {
    const keys = new Set<string>();
    const bySegment = new Map<number, Array<[number, Record<string, unknown>]>>();
    for (const [id, job] of dbJobs) {
      const list = bySegment.get(job['segment'] as number) ?? [];
      list.push([id, job]);
      bySegment.set(job['segment'] as number, list);
    }
    for (const [segmentId, list] of bySegment) {
      if (liveOnly && !list.some(([, j]) => LIVE.has(j['state'] as string))) continue;
      const d = taskData(dbSegments.get(segmentId)!['task'] as number);
      if (!d || (d.data['size'] as number) === 0) continue;
      const owner = list.find(([, j]) => j['type'] !== 'consensus_replica') ?? list[0]!;
      for (const key of chunkKeys(owner[0], segmentId)) keys.add(key);
      if (d.audio || d.video) continue;
      for (const f of segmentFrames(segmentId)) if (relatedCount(d.dataId, f) > 0) keys.add(`context_images_${d.dataId}_${f}`);
    }
    return keys;
  };

  const requests: RecordedCvat['requests'] = [];
  const warm = new Set<string>();
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const page = (res: http.ServerResponse, items: unknown[]) => json(res, 200, { count: items.length, next: null, previous: null, results: items });
  const since = (query: URLSearchParams): ((item: Record<string, unknown>) => boolean) => {
    const raw = query.get('filter');
    if (!raw) return () => true;
    const rule = JSON.parse(raw) as { and?: Array<Record<string, [unknown, string]>> };
    const bound = rule.and?.[0]?.['>=']?.[1];
    if (typeof bound !== 'string') throw new Error(`unexpected filter ${raw}`);
    return (item) => Date.parse(String(item['updated_date'])) >= Date.parse(bound);
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://recorded');
    const path = url.pathname.replace(/\/$/, '');
    const q = url.searchParams;
    let m: RegExpExecArray | null;
    if (path === '/api/server/about') {
      json(res, 200, { name: 'Computer Vision Annotation Tool', version });
      return;
    }
    if (path === '/api/users/self') {
      json(res, 200, { id: 1, username: 'admin1', is_superuser: true });
      return;
    }
    if (path === '/api/tasks') {
      page(res, tasks.filter((t) => (q.get('project_id') ? String(t['project_id']) === q.get('project_id') : true)).filter(since(q)));
      return;
    }
    if (path === '/api/jobs') {
      page(res, jobs.filter((j) => (q.get('task_id') ? String(j['task_id']) === q.get('task_id') : true)).filter(since(q)));
      return;
    }
    if ((m = /^\/api\/tasks\/(\d+)$/.exec(path))) {
      const task = tasks.find((t) => t['id'] === Number(m![1]));
      if (task) json(res, 200, task);
      else json(res, 404, { detail: 'Not found.' });
      return;
    }
    if ((m = /^\/api\/jobs\/(\d+)$/.exec(path))) {
      const job = jobs.find((j) => j['id'] === Number(m![1]));
      if (job) json(res, 200, job);
      else json(res, 404, { detail: 'Not found.' });
      return;
    }
    if ((m = /^\/api\/tasks\/(\d+)\/data\/meta$/.exec(path))) {
      const d = taskData(Number(m[1]));
      if (!d) {
        json(res, 404, { detail: 'Not found.' });
        return;
      }
      json(res, 200, {
        chunk_size: d.data['chunk_size'],
        size: d.data['size'],
        start_frame: d.data['start_frame'],
        stop_frame: d.data['stop_frame'],
        frame_filter: d.data['frame_filter'] ?? '',
        // views.py data_meta: one entry for the video or the audio file (audio without width/height).
        frames: d.audio
          ? [{ name: db.find((r) => r.model === 'engine.audio' && r.fields['data'] === d.dataId)?.fields['path'] ?? 'audio', related_files: 0 }]
          : d.video
            ? [{ name: 'video', width: 1280, height: 720, related_files: 0 }]
            : d.frames.map((i) => ({ name: i.fields['path'], width: i.fields['width'], height: i.fields['height'], related_files: relatedOf.get(i.pk) ?? 0 })),
        deleted_frames: numbers(d.data['deleted_frames']),
        included_frames: null,
        storage: d.data['storage'],
      });
      return;
    }
    if ((m = /^\/api\/jobs\/(\d+)\/data\/meta$/.exec(path))) {
      const job = dbJobs.get(Number(m[1]));
      if (!job) {
        json(res, 404, { detail: 'Not found.' });
        return;
      }
      const seg = dbSegments.get(job['segment'] as number)!;
      const d = taskData(seg['task'] as number)!;
      json(res, 200, {
        chunk_size: d.data['chunk_size'],
        size: segmentFrames(job['segment'] as number).length,
        start_frame: d.data['start_frame'],
        stop_frame: d.data['stop_frame'],
        frame_filter: d.data['frame_filter'] ?? '',
        frames: [],
        deleted_frames: [],
        included_frames: seg['type'] === 'specific_frames' ? numbers(seg['frames']) : null,
      });
      return;
    }
    if ((m = /^\/api\/(tasks|jobs)\/(\d+)\/preview$/.exec(path))) {
      // 2.67+: `Prefer: handling=empty` → 204 where there is no image to show (3D, audio).
      const prefer = typeof req.headers['prefer'] === 'string' ? req.headers['prefer'] : undefined;
      const taskId = m[1] === 'tasks' ? Number(m[2]) : (dbSegments.get(dbJobs.get(Number(m[2]))?.['segment'] as number)?.['task'] as number | undefined);
      const d = taskId === undefined ? undefined : taskData(taskId);
      const status = !d ? 404 : prefer === 'handling=empty' && !legacy && (d.audio || d.task['dimension'] === '3d') ? 204 : 200;
      requests.push({ path, query: url.search, status, ...(prefer ? { prefer } : {}) });
      if (status === 200) res.writeHead(200, { 'content-type': 'image/jpeg', vary: 'Prefer' }).end(Buffer.alloc(8));
      else if (status === 204) res.writeHead(204, { vary: 'Prefer', 'preference-applied': 'handling=empty' }).end();
      else json(res, 404, { detail: 'Not found.' });
      return;
    }
    if ((m = /^\/api\/jobs\/(\d+)\/data$/.exec(path))) {
      const jobId = Number(m[1]);
      const job = dbJobs.get(jobId);
      if (!job) {
        json(res, 404, { detail: 'Not found.' });
        return;
      }
      const segmentId = job['segment'] as number;
      const seg = dbSegments.get(segmentId)!;
      const d = taskData(seg['task'] as number)!;
      const cs = d.data['chunk_size'] as number;
      const frames = segmentFrames(segmentId);
      const answer = (status: number, key?: string) => {
        requests.push({ path, query: url.search, status });
        if (key && status < 300) warm.add(key);
        if (status === 200) res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(16));
        else json(res, status, status === 404 ? '' : ['rejected by the recorded CVAT double']);
      };
      if (q.get('type') === 'chunk') {
        if (!legacy) {
          const index = Number(q.get('index'));
          if (!Number.isInteger(index) || index < 0 || index >= Math.ceil(frames.length / cs)) {
            answer(400);
            return;
          }
          answer(200, `segment_${segmentId}_chunk_${index}`);
          return;
        }
        const n = Number(q.get('number'));
        const first = Math.floor((seg['start_frame'] as number) / cs);
        const last = Math.floor((seg['stop_frame'] as number) / cs);
        if (!Number.isInteger(n) || n < first || n > last) {
          answer(400);
          return;
        }
        answer(200, job['type'] === 'ground_truth' ? `job_${jobId}_chunk_${n}` : `data_${d.dataId}_chunk_${n}`);
        return;
      }
      if (q.get('type') === 'context_image') {
        const f = Number(q.get('number'));
        if (d.audio) {
          answer(400);
          return;
        }
        const inSegment = legacy ? f >= (seg['start_frame'] as number) && f <= (seg['stop_frame'] as number) : frames.includes(f);
        if (!inSegment) {
          answer(400);
          return;
        }
        if (relatedCount(d.dataId, f) === 0) {
          answer(404);
          return;
        }
        answer(200, `context_images_${d.dataId}_${f}`);
        return;
      }
      answer(400);
      return;
    }
    json(res, 404, { detail: 'Not found.' });
  };

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      json(res, 500, { detail: String(error) });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    version,
    requests,
    warm,
    uiReads,
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
