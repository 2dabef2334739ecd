// A fast fake CVAT 2.73 for the scale benchmark, in its own process: task, job and meta
// lists shaped as CVAT returns them (only the fields the warden reads), and instant chunk
// answers (206 for `Range: bytes=0-0`, as 2.66+ does). It counts chunk requests and the
// distinct chunks asked for, so the benchmark can tell what a restart re-requested.
// Usage: node fast-cvat.mjs '{"tasks":10000,"jobsPerTask":4,"chunksPerJob":25,"shareDirs":0}'
//   shareDirs > 0: that many share-backed tasks (storage "share") of `filesPerDir` frames
//   named d<k>/f<i>.jpg, one job each, for the guard figure.
// GET /__stats → { chunkRequests, distinctChunks, apiRequests }; POST /__reset zeroes them.
import { createServer } from 'node:http';

const o = { tasks: 1000, jobsPerTask: 4, chunksPerJob: 25, chunkSize: 36, shareDirs: 0, filesPerDir: 100, ...JSON.parse(process.argv[2] ?? '{}') };
const DATE = Date.UTC(2026, 10, 1);
const iso = (ms) => new Date(ms).toISOString().replace('Z', '000Z');

// Task t (1-based) has jobs (t-1)*J+1 … t*J; share tasks come after the plain ones.
const shareTasks = o.shareDirs;
const plainTasks = o.tasks;
const totalTasks = plainTasks + shareTasks;
const framesPerJob = (t) => (t > plainTasks ? o.filesPerDir : o.chunksPerJob * o.chunkSize);
const jobsOf = (t) => (t > plainTasks ? 1 : o.jobsPerTask);
const firstJob = (t) => (t > plainTasks ? plainTasks * o.jobsPerTask + (t - plainTasks) : (t - 1) * o.jobsPerTask + 1);
const taskOfJob = (j) => (j <= plainTasks * o.jobsPerTask ? Math.ceil(j / o.jobsPerTask) : plainTasks + (j - plainTasks * o.jobsPerTask));
const totalJobs = plainTasks * o.jobsPerTask + shareTasks;
const updated = (t) => iso(DATE + t);

function task(t) {
  const size = framesPerJob(t) * jobsOf(t);
  return {
    id: t,
    name: `task ${t}`,
    size,
    data: t,
    data_chunk_size: o.chunkSize,
    mode: 'annotation',
    media_type: 'image',
    dimension: '2d',
    project_id: null,
    organization: null,
    segment_size: framesPerJob(t),
    overlap: 0,
    status: 'annotation',
    updated_date: updated(t),
    jobs: { count: jobsOf(t) },
  };
}

function job(j) {
  const t = taskOfJob(j);
  const k = j - firstJob(t);
  const frames = framesPerJob(t);
  return {
    id: j,
    task_id: t,
    type: 'annotation',
    parent_job_id: null,
    start_frame: k * frames,
    stop_frame: (k + 1) * frames - 1,
    frame_count: frames,
    data_chunk_size: o.chunkSize,
    state: 'new',
    stage: 'annotation',
    status: 'annotation',
    project_id: null,
    organization: null,
    updated_date: updated(t),
  };
}

function meta(t) {
  const size = framesPerJob(t) * jobsOf(t);
  const share = t > plainTasks;
  const d = t - plainTasks - 1;
  const frames = share
    ? Array.from({ length: size }, (_, i) => ({ name: `d${d}/f${i}.jpg`, width: 1920, height: 1080, related_files: 0, has_related_context: false }))
    : [];
  return {
    chunk_size: o.chunkSize,
    size,
    start_frame: 0,
    stop_frame: size - 1,
    frame_filter: '',
    frames,
    deleted_frames: [],
    included_frames: null,
    chunks_updated_date: iso(DATE),
    storage: share ? 'share' : 'local',
    cloud_storage_id: null,
  };
}

const chunksOfJob = (j) => Math.ceil(framesPerJob(taskOfJob(j)) / o.chunkSize);
const maxChunks = Math.max(o.chunksPerJob, Math.ceil(o.filesPerDir / o.chunkSize));
const seen = new Uint8Array((totalJobs + 1) * maxChunks);
let stats = { chunkRequests: 0, distinctChunks: 0, apiRequests: 0 };

function page(url, res, ids, render) {
  const pageNo = Math.max(1, Number(url.searchParams.get('page') ?? 1));
  const size = Math.min(1000, Math.max(1, Number(url.searchParams.get('page_size') ?? 10)));
  const slice = ids.slice((pageNo - 1) * size, pageNo * size);
  let next = null;
  if (pageNo * size < ids.length) {
    const n = new URL(url);
    n.searchParams.set('page', String(pageNo + 1));
    next = n.toString();
  }
  json(res, { count: ids.length, next, previous: null, results: slice.map(render) });
}

function json(res, body, status = 200) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const allTaskIds = Array.from({ length: totalTasks }, (_, i) => i + 1);
const allJobIds = Array.from({ length: totalJobs }, (_, i) => i + 1);

/**
 * `filter` ({">=":[{"var":"updated_date"},…]}, the only one the warden sends) and
 * `sort=-updated_date`, for tasks and jobs alike: CVAT's TaskViewSet and JobViewSet both
 * list updated_date in filter_fields and ordering_fields (cvat/apps/engine/views.py).
 * Ids ascend with dates here, so sorting by date is reversing.
 */
function filtered(url, ids, dateOf) {
  const filter = url.searchParams.get('filter');
  const since = filter ? /">=":\[\{"var":"updated_date"\},"([^"]+)"\]/.exec(filter)?.[1] : undefined;
  let out = since ? ids.filter((id) => dateOf(id) >= since) : ids;
  // `id` and `task_id,id` (the all-jobs listing of a first discovery) are id order here: job ids ascend with tasks.
  if (url.searchParams.get('sort') === '-updated_date') out = [...out].reverse();
  return out;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
  const p = url.pathname;
  let m;
  if (p === '/__stats') return json(res, stats);
  if (p === '/__reset') {
    stats = { chunkRequests: 0, distinctChunks: 0, apiRequests: 0 };
    seen.fill(0);
    return json(res, stats);
  }
  if ((m = /^\/api\/jobs\/(\d+)\/data$/.exec(p)) && url.searchParams.get('type') === 'chunk') {
    const j = Number(m[1]);
    const index = Number(url.searchParams.get('index'));
    if (!(j >= 1 && j <= totalJobs) || !(index >= 0 && index < chunksOfJob(j))) return json(res, { detail: 'not found' }, 404);
    stats.chunkRequests++;
    const bit = j * maxChunks + index;
    if (!seen[bit]) {
      seen[bit] = 1;
      stats.distinctChunks++;
    }
    const headers = { 'content-type': 'application/zip', 'x-checksum': String((j * 7919 + index) >>> 0), 'x-updated-date': iso(DATE) };
    if (req.headers.range) {
      res.writeHead(206, { ...headers, 'content-range': 'bytes 0-0/4096', 'content-length': 1 });
      return res.end('z');
    }
    res.writeHead(200, { ...headers, 'content-length': 4096 });
    return res.end(Buffer.alloc(4096));
  }
  stats.apiRequests++;
  if (p === '/api/server/about') return json(res, { name: 'Computer Vision Annotation Tool', version: '2.73.0', description: 'fast fake' });
  if (p === '/api/tasks') return page(url, res, filtered(url, allTaskIds, updated), task);
  if ((m = /^\/api\/tasks\/(\d+)$/.exec(p))) return Number(m[1]) <= totalTasks ? json(res, task(Number(m[1]))) : json(res, { detail: 'not found' }, 404);
  if ((m = /^\/api\/tasks\/(\d+)\/data\/meta$/.exec(p)))
    return Number(m[1]) <= totalTasks ? json(res, meta(Number(m[1]))) : json(res, { detail: 'not found' }, 404);
  if (p === '/api/jobs') {
    const t = Number(url.searchParams.get('task_id'));
    const ids = t >= 1 && t <= totalTasks ? Array.from({ length: jobsOf(t) }, (_, k) => firstJob(t) + k) : allJobIds;
    return page(
      url,
      res,
      filtered(url, ids, (j) => updated(taskOfJob(j))),
      job,
    );
  }
  if ((m = /^\/api\/jobs\/(\d+)$/.exec(p))) return Number(m[1]) <= totalJobs ? json(res, job(Number(m[1]))) : json(res, { detail: 'not found' }, 404);
  if ((m = /^\/api\/jobs\/(\d+)\/data\/meta$/.exec(p))) {
    const j = Number(m[1]);
    const t = taskOfJob(j);
    return json(res, { ...meta(t), frames: [] });
  }
  json(res, { detail: 'not found' }, 404);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(
    `URL http://127.0.0.1:${port} chunks=${plainTasks * o.jobsPerTask * o.chunksPerJob + shareTasks * Math.ceil(o.filesPerDir / o.chunkSize)}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
