// The bare pipeline under the guard's ready time (issue 21), run by bench/scale.mjs in its own
// process beside the real `run`: only the work no guard can skip to know every share file's
// stat — list the tasks and the jobs, GET every task's data/meta (as many at once as `run`'s
// --discovery-concurrency default), JSON.parse it, and stat every frame's file on a worker
// thread in batches of 2,048 paths, two in flight (as the guard's stat thread). Nothing else:
// no index, no baseline journal, no watches, no planning, no validation. It is not a proof
// of what is possible (a native program stats for less), but it is what any Node program
// pays on this machine for the same answer, measured in the same run as `find` and `run`.
// Usage: node guard-floor.mjs '{"url":"http://127.0.0.1:PORT","share":"/abs/share","concurrency":6}'
// Prints one JSON line: { seconds, cpuS, mainThreadS, tasks, files, present, requests }.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';

const { url, share, concurrency = 6, token = 'bench-token-0123456789' } = JSON.parse(process.argv[2] ?? '{}');
if (!url || !share) throw new Error('usage: guard-floor.mjs \'{"url":…,"share":…}\'');

const BATCH = 2048;
const STAT_WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.on('message', (m) => {
  const paths = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength).toString('utf8').split('\\0');
  const fields = new Float64Array(paths.length * 4);
  for (let i = 0; i < paths.length; i++) {
    const st = fs.statSync(paths[i], { throwIfNoEntry: false });
    if (st === undefined) { fields[i * 4] = -1; continue; }
    fields[i * 4] = st.size; fields[i * 4 + 1] = st.mtimeMs; fields[i * 4 + 2] = st.ino; fields[i * 4 + 3] = st.dev;
  }
  parentPort.postMessage({ id: m.id, fields }, [fields.buffer]);
});`;

function threadCpuSeconds() {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const started = performance.now();
const cpuBefore = process.cpuUsage();
const mainBefore = threadCpuSeconds();
const pool = new Pool(url, { connections: concurrency });
let requests = 0;
async function getJson(path) {
  requests++;
  const { statusCode, body } = await pool.request({ path, method: 'GET', headers: { authorization: `Token ${token}`, accept: 'application/json' } });
  const text = await body.text();
  if (statusCode !== 200) throw new Error(`GET ${path}: HTTP ${statusCode}`);
  return JSON.parse(text);
}
async function listAll(path) {
  const out = [];
  for (let page = 1; ; page++) {
    const answer = await getJson(`${path}?page=${page}&page_size=1000`);
    out.push(...answer.results);
    if (!answer.next) return out;
  }
}

const worker = new Worker(STAT_WORKER, { eval: true });
const waiting = new Map();
let nextId = 0;
worker.on('message', ({ id, fields }) => {
  waiting.get(id)(fields);
  waiting.delete(id);
});
let files = 0;
let present = 0;
function statBatch(paths) {
  const bytes = new TextEncoder().encode(paths.join('\0')); // its own ArrayBuffer (a small Buffer.from shares a pool)
  const id = nextId++;
  const answer = new Promise((resolve) => waiting.set(id, resolve));
  worker.postMessage({ id, bytes }, [bytes.buffer]);
  return answer.then((fields) => {
    for (let i = 0; i < fields.length; i += 4) if (fields[i] >= 0) present++;
  });
}

const tasks = await listAll('/api/tasks');
await listAll('/api/jobs');
let pending = [];
const inFlight = [];
async function flush() {
  if (pending.length === 0) return;
  files += pending.length;
  inFlight.push(statBatch(pending));
  pending = [];
  if (inFlight.length >= 2) await inFlight.shift();
}
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < tasks.length) {
      const meta = await getJson(`/api/tasks/${tasks[next++].id}/data/meta`);
      for (const frame of meta.frames) pending.push(`${share}/${frame.name}`);
      if (pending.length >= BATCH) await flush();
    }
  }),
);
await flush();
await Promise.all(inFlight);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
const result = { seconds, cpuS: (cpu.user + cpu.system) / 1e6, mainThreadS: threadCpuSeconds() - mainBefore, tasks: tasks.length, files, present, requests };
await worker.terminate();
await pool.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
