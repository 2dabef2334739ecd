// Child process: plans 1,000,000 chunks (10,000 jobs × 100 chunks) and checks each
// against an empty ledger, streaming (or, with "array", materialising the plan first).
// Prints peak RSS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planRequests } from '../dist/plan/planner.js';
import { Ledger } from '../dist/warm/ledger.js';
import { peakRssMB } from './lib.mjs';

const mode = process.argv[2] ?? 'stream';
const JOBS = 10_000;
const CHUNKS_PER_JOB = 100;
const tasks = [];
for (let t = 0; t < JOBS / 10; t++) {
  const jobs = [];
  for (let j = 0; j < 10; j++) {
    const id = t * 10 + j + 1;
    jobs.push({
      id,
      taskId: t + 1,
      type: 'annotation',
      startFrame: j * 3600,
      stopFrame: j * 3600 + 3599,
      frameCount: 3600,
      chunkSize: 36,
      state: j % 2 ? 'new' : 'completed',
    });
  }
  tasks.push({ id: t + 1, chunkSize: 36, startFrame: 0, frameStep: 1, jobs });
}
const dir = mkdtempSync(join(tmpdir(), 'bench-plan-'));
const ledger = await Ledger.open(dir, { durable: false });
const options = { qualities: ['compressed'], previews: false, contextImages: false, indexChunks: true, skipCompleted: false };
let fresh = 0;
let count = 0;
const started = performance.now();
const source = mode === 'array' ? [...planRequests(tasks, options)] : planRequests(tasks, options);
for (const r of source) {
  count++;
  if (ledger.isFresh(r.series, r.slot, 3_600_000)) fresh++;
}
const seconds = (performance.now() - started) / 1000;
await ledger.close();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(`RESULT ${JSON.stringify({ mode, chunks: count, fresh, seconds, peakRssMB: peakRssMB() })}\n`);
