/** The running warden and the CVAT it talks to: build, reachability, credentials, damaged state records. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { STATE_STORES } from '../state/damage.js';

export interface BuildInfo {
  version: string;
  nodeVersion?: string;
}

export function serviceMetrics(registry: Registry, buildInfo: BuildInfo) {
  const buildInfoGauge = new Gauge({
    name: 'cvat_warden_build_info',
    help: 'Build information of the running cvat-warden; always 1.',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  });
  buildInfoGauge.set({ version: buildInfo.version, node_version: buildInfo.nodeVersion ?? process.version }, 1);

  const cvatUp = new Gauge({
    name: 'cvat_warden_cvat_up',
    help: 'Whether the last request to the CVAT API got an HTTP answer (1) or not (0).',
    registers: [registry],
  });

  const cvatInfo = new Gauge({
    name: 'cvat_warden_cvat_info',
    help: 'Version of the CVAT server last seen; always 1.',
    labelNames: ['version'] as const,
    registers: [registry],
  });

  const cvatCredentialsOk = new Gauge({
    name: 'cvat_warden_cvat_credentials_ok',
    help: 'Whether CVAT accepted the credentials on the last authenticated request (1) or answered 401 (0); 1 until refused.',
    registers: [registry],
  });
  cvatCredentialsOk.set(1);

  const cvatAuthFailures = new Counter({
    name: 'cvat_warden_cvat_auth_failures_total',
    help: 'Times CVAT started refusing the credentials (a 401 after they were accepted or before they ever were).',
    registers: [registry],
  });

  const stateRecordsDamaged = new Counter({
    name: 'cvat_warden_state_records_damaged_total',
    help: "Records of the warden's state files found damaged at load and skipped (journal lines; a damaged snapshot counts the entries it claims), by store: ledger_journal, ledger_snapshot, baseline_journal, baseline_snapshot. The intact records are kept.",
    labelNames: ['store'] as const,
    registers: [registry],
  });
  for (const store of STATE_STORES) stateRecordsDamaged.inc({ store }, 0);

  return {
    buildInfo: buildInfoGauge,
    cvatUp,
    cvatInfo,
    cvatCredentialsOk,
    cvatAuthFailures,
    stateRecordsDamaged,
  };
}
