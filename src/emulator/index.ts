/**
 * A node:http stand-in for CVAT (2.73 by default, 2.14-style "old mode" below 2.20) for
 * tests, benchmarks and the no-CVAT demo. Every behaviour comes from cvat-facts.md:
 * segment-keyed chunk cache with CVAT's key names, FIFO build queue with K workers and
 * dedup, wait-then-429, 24 h TTL from build time, share-backed builds that fail with a
 * bare 500 when a file is gone, Range, auth/orgs, paging and filters.
 *
 *   const emu = await startEmulator({ tasks: syntheticDeployment({ tasks: 3 }), buildTimeMs: 5 });
 *   … fetch(`${emu.url}/api/jobs?page_size=all`) …
 *   await emu.close();
 */
export type { Clock } from './clock.js';
export { ManualClock, OffsetClock, systemClock, cvatDate } from './clock.js';
export type { EmulatorAuth, EmulatorUser, JobStage, JobState, JobType, MediaType, OrgRole, OrganizationSpec, StorageKind, TaskMode, TaskSpec } from './spec.js';
export type { EmulatedJob, EmulatedSegment, EmulatedTask, FrameInfo } from './model.js';
export { Deployment } from './model.js';
export { EmulatorState, kindMatches, type RequestGroup, type RequestKind, type RequestRecord } from './state.js';
export { FaultInjector, type FaultSpec, type FaultMatch, type FaultStatus, type RandomFaultOptions } from './faults.js';
export { emulatorFeatures, type EmulatorFeatures } from './features.js';
export {
  contextImagesKey,
  legacyChunkKey,
  legacyGtChunkKey,
  qualityToken,
  segmentChunkKey,
  segmentPreviewKey,
  segmentTaskChunkKey,
  taskChunkKey,
  type Quality,
} from './keys.js';
export { generateSegmentParams, defaultOverlap, defaultChunkSize, type SegmentPlan, type SegmentRange } from './segments.js';
export { cvatChecksum } from './content.js';
export { copySampleShare, prepareDemoShare, sampleShareDir, writeSyntheticShare, listShare, type ShareEntry } from './share.js';
export { DEMO_CREDENTIALS, countUiChunks, demoAuth, demoDeployment, syntheticDeployment, type DemoDeployment, type SyntheticOptions } from './scenarios.js';
export { runEmulateCommand, type EmulateArgs } from './cli.js';
export { startEmulator, type Emulator, type EmulatorOptions } from './emulator.js';
export { BUCKET_CONTENT_MAX_PAGE_SIZE, CloudStorages, type CloudStatus, type CloudStorageSpec, type ContentEntry } from './cloud.js';
export { RedisCacheMirror } from './redis-mirror.js';
export type { CacheObserver, CachedItem } from './cache.js';
