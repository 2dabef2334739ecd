/**
 * Share integrity guard: public API. Everything outside src/guard/ imports from here
 * (enforced by the lint rule on import boundaries).
 */
export { ShareGuard, type ShareGuardOptions, type ShareGuardStatus } from './guard.js';
export { runCheck, checkExitCode, formatCheckReport, type CheckOptions, type CheckReport, type CheckTaskProblem } from './check.js';
export { detectFsType, isNetworkFsType, parseMountinfo, type FsTypeInfo } from './shell/fstype.js';
export { CHUNK_CACHE_TTL_MS, type LastWarmedAt } from './core/mapping.js';
export { checkName } from './shell/paths.js';
export { cloudGuardTask, toGuardTask } from './from-cvat.js';
// The guard's second source: cloud storage listed through CVAT's API (cloud-guard.ts).
export { CloudGuard, type CloudGuardOptions, type CloudGuardStatus, type CloudProblem, type CloudRoundResult } from './cloud-guard.js';
export { cloudExitCode, formatCloudReport } from './cloud-report.js';
export { nodeFs } from './shell/fsio.js';
export { inotifyDoctorCheck, inotifyWatchLimit, type InotifyLimit, type WatchLimitVerdict } from './shell/inotify-limit.js';
export { affectedTask, compileTask } from './core/mapping.js';
export type { GuardFs, DirWatcher } from './shell/fsio.js';
export type * from './types.js';
// For the vault (src/vault/): the same expected-file list the guard builds.
export { ShareIndex } from './core/share-index.js';
export { addTaskToIndex, taskSignature, type TaskFilesContext } from './shell/task-files.js';
export { ShareRootResolver } from './shell/paths.js';
export { DirLister, findRelatedImages, isPointCloudName } from './shell/related.js';
// For `impact`: the index's answer to "what reads these paths", and typed paths resolved inside the share.
export { impactAnswer, impactOf, isUnder, slotsUnder, type ImpactAnswer, type ImpactResult, type TaskImpact } from './core/impact.js';
export { resolveUserPath, type UserPathVerdict } from './shell/user-path.js';
export { WORKER_MOUNT_FIX, WORKER_MOUNT_MESSAGE, chunkFilesOf, explainChunkFailure, readableHere, type Readability } from './shell/worker-mount.js';
