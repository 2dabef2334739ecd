// `npm run bench [-- warm guard annotator ui scale vault impact cloud deep]`: runs the benchmarks, prints each figure as a
// ratio to a baseline measured in the same run, and rewrites docs/benchmarks.md.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { machine, runChild } from './lib.mjs';

const selected = new Set(process.argv.slice(2));
// The 1-minute load average when each section starts and ends goes into its stamp: times
// measured while other work shared the cores say so themselves.
const load = {};
const want = (name) => {
  const wanted = selected.size === 0 || selected.has(name);
  if (wanted) load[name] = [loadavg()[0]];
  return wanted;
};
const here = (file) => new URL(file, import.meta.url).pathname;
const sections = new Proxy(
  {},
  {
    set(target, name, text) {
      target[name] = text;
      load[name]?.push(loadavg()[0]);
      return true;
    },
  },
);

if (want('warm')) {
  const warm = await import('./warm.mjs');
  console.error('bench: UI coverage…');
  const coverage = await warm.coverage();
  console.error('bench: throughput (2,000 cold chunks at concurrency 1 and 2)…');
  const throughput = await warm.throughput();
  console.error('bench: client cost…');
  const clientCost = await warm.clientCost();
  console.error('bench: plan memory (1,000,000 chunks)…');
  const stream = await runChild(here('./plan-memory.mjs'), ['stream']);
  const array = await runChild(here('./plan-memory.mjs'), ['array']);
  const planMemory = { chunks: stream.chunks, streamingPeakRssMB: stream.peakRssMB, arrayPeakRssMB: array.peakRssMB, streamingSeconds: stream.seconds };
  sections.warm = warm.report({ coverage, throughput, clientCost, planMemory });
}

if (want('guard') && existsSync(here('./guard.mjs'))) {
  console.error('bench: share guard (this generates a large tree; GUARD_BENCH_FILES to shrink it)…');
  const guard = await import('./guard.mjs');
  sections.guard = await guard.benchmarkSection();
}

if (want('annotator') && existsSync(here('./annotator.mjs'))) {
  console.error('bench: annotator protection…');
  const annotator = await import('./annotator.mjs');
  sections.annotator = await annotator.benchmarkSection();
}

if (want('ui')) {
  const ui = await import('./ui-reads.mjs');
  console.error('bench: UI coverage with context images…');
  const coverage = await ui.coverage();
  console.error('bench: discovery cost per poll (200 / 4,000 and 2,000 / 40,000 tasks / jobs)…');
  const discovery = await ui.discoveryCost();
  console.error('bench: first discovery at 10,000 tasks, 10 ms per API call…');
  const first = await ui.firstDiscovery();
  sections.ui = ui.report({ coverage, discovery, first });
}

if (want('scale') && existsSync(here('./scale.mjs'))) {
  console.error('bench: the service at scale (100 k, 300 k, 1 M chunks; about half an hour; SCALE_BENCH_SIZES to shrink)…');
  const scale = await import('./scale.mjs');
  sections.scale = await scale.benchmarkSection();
}

if (want('vault') && existsSync(here('./vault.mjs'))) {
  console.error('bench: vault (generates a 1,000,000-file share; VAULT_BENCH_FILES to shrink it)…');
  const vault = await import('./vault.mjs');
  sections.vault = await vault.benchmarkSection();
}

if (want('impact') && existsSync(here('./impact.mjs'))) {
  console.error('bench: impact over a 1,000,000-file share index (IMPACT_BENCH_FILES to shrink it)…');
  const impact = await import('./impact.mjs');
  sections.impact = await impact.benchmarkSection();
}

if (want('cloud') && existsSync(here('./cloud.mjs'))) {
  console.error('bench: cloud listing cost per 10,000 objects…');
  const cloud = await import('./cloud.mjs');
  sections.cloud = await cloud.benchmarkSection();
}

if (want('deep') && existsSync(here('./deep.mjs'))) {
  console.error("bench: deep mode (1,000,000 cached keys in a real redis-server; DEEP_BENCH_KEYS to shrink), and a day's requests against shallow mode…");
  const deep = await import('./deep.mjs');
  sections.deep = await deep.benchmarkSection();
}

for (const text of Object.values(sections)) console.log(text);

// Keep sections from earlier runs that were not re-run this time; `notes` is never a section:
// side-by-side figures measured by hand (against an earlier commit) live there across runs.
const path = new URL('../docs/benchmarks.md', import.meta.url).pathname;
mkdirSync(new URL('../docs/', import.meta.url).pathname, { recursive: true });
const previous = existsSync(path) ? readFileSync(path, 'utf8') : '';
const keep = (name) => {
  const match = new RegExp(`<!-- ${name}:start -->([\\s\\S]*?)<!-- ${name}:end -->`).exec(previous);
  return match ? match[1] : '';
};
const m = machine();
const stamp = (name) =>
  `_Measured ${m.date} on ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}; load average ${load[name].map((l) => l.toFixed(1)).join(' → ')} (start → end of the section)._\n\n`;
const block = (name) => `<!-- ${name}:start -->\n${sections[name] ? stamp(name) + sections[name] : keep(name).trim() + '\n'}<!-- ${name}:end -->`;
writeFileSync(
  path,
  `# Benchmarks\n\nProduced by \`npm run bench\` (\`npm run bench -- warm\` for one section). Every figure is printed beside a baseline measured in the same run, so ratios stay meaningful on a busy or different machine. Sections not re-run keep their earlier figures and date.\n\n${block('warm')}\n\n${block('guard')}\n\n${block('annotator')}\n\n${block('ui')}\n\n${block('scale')}\n\n${block('vault')}\n\n${block('impact')}\n\n${block('cloud')}\n\n${block('deep')}\n\n${block('notes')}\n`,
);
console.error(`bench: wrote ${path}`);
