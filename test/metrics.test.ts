/** The Prometheus text the warden exports: names, types, units, zeroed label sets, bounded labels. */
import { describe, expect, it } from 'vitest';
import { CHUNK_OUTCOMES } from '../src/domain.js';
import { createMetrics, setWatchMode } from '../src/metrics.js';

describe('metrics registry', () => {
  it('exports the warm, CVAT and build metrics with Prometheus naming and zeroed label sets', async () => {
    const metrics = createMetrics({ buildInfo: { version: '1.2.3', nodeVersion: 'v20.20.2' } });
    metrics.chunkRequests.inc({ quality: 'compressed', outcome: 'warm' });
    metrics.chunkRequestDuration.observe({ quality: 'compressed' }, 42);
    metrics.cvatUp.set(1);
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE cvat_warden_chunk_requests_total counter');
    expect(text).toContain('cvat_warden_chunk_requests_total{quality="compressed",outcome="warm"} 1');
    for (const outcome of CHUNK_OUTCOMES) expect(text).toContain(`cvat_warden_chunk_requests_total{quality="original",outcome="${outcome}"} 0`);
    expect(text).toContain('# TYPE cvat_warden_chunk_request_duration_seconds histogram');
    expect(text).toContain('cvat_warden_chunk_request_duration_seconds_bucket{le="120",quality="compressed"} 1');
    expect(text).toContain('cvat_warden_chunk_request_duration_seconds_bucket{le="30",quality="compressed"} 0');
    expect(text).toContain('cvat_warden_chunk_request_duration_seconds_count{quality="original"} 0');
    for (const state of ['warm', 'pending', 'failed', 'stuck']) expect(text).toContain(`cvat_warden_chunks{state="${state}"} 0`);
    expect(text).toContain('cvat_warden_cvat_up 1');
    expect(text).toContain('cvat_warden_build_info{version="1.2.3",node_version="v20.20.2"} 1');
  });

  it('follows the naming rules: prefix, _total only on counters, base units, no unbounded labels', async () => {
    const metrics = createMetrics({ buildInfo: { version: 'x' }, defaultMetrics: true });
    metrics.taskShareFilesMissing.set({ task_id: '7' }, 3);
    setWatchMode(metrics, 'scan_only');
    const families = await metrics.registry.getMetricsAsJSON();
    const unbounded = /path|file|chunk_index|job_id|frame|url/;
    for (const family of families) {
      // prom-client's default process_*/nodejs_* metrics keep their standard names, so stock
      // Node.js and process dashboards work (one of them, a gauge, ends in _total).
      const ours = !/^(process|nodejs)_/.test(family.name);
      expect(family.name).toMatch(ours ? /^cvat_warden_[a-z0-9_]+$/ : /^(process|nodejs)_[a-z0-9_]+$/);
      if (String(family.type) === 'counter') expect(family.name).toMatch(/_total$/);
      else if (ours) expect(family.name).not.toMatch(/_total$/);
      expect(family.name).not.toMatch(/_(milliseconds|ms|minutes|hours|kilobytes|megabytes)\b/);
      for (const value of family.values) for (const label of Object.keys(value.labels)) expect(label).not.toMatch(unbounded);
    }
    const text = await metrics.registry.metrics();
    expect(text).toContain('cvat_warden_task_share_files_missing{task_id="7"} 3');
    expect(text).toContain('cvat_warden_share_watch_mode{mode="scan_only"} 1');
    expect(text).toContain('cvat_warden_share_watch_mode{mode="inotify"} 0');
    expect(text).toMatch(/^process_resident_memory_bytes \d/m);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).not.toContain('cvat_warden_process_');
    expect(text).not.toContain('cvat_warden_nodejs_');
  });
});
