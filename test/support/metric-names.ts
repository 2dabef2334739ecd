/** Metric names the service exports, as a scraper sees them (histograms with _bucket/_sum/_count). */
import { createMetrics } from '../../src/metrics.js';

export async function exportedMetricNames(defaultMetrics = true): Promise<Set<string>> {
  const { registry } = createMetrics({ buildInfo: { version: 'test' }, defaultMetrics });
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    // prom-client's typings declare `type` as a numeric enum; at run time it is the string.
    const type = String(metric.type);
    if (type === 'histogram' || type === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    }
  }
  return names;
}
