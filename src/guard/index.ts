/**
 * Share integrity guard: public API. Everything outside src/guard/ imports from here
 * (enforced by the lint rule on import boundaries).
 */
export { ShareGuard, type ShareGuardOptions, type ShareGuardStatus } from './guard.js';
export { runCheck, checkExitCode, formatCheckReport, type CheckOptions, type CheckReport, type CheckTaskProblem } from './check.js';
export { detectFsType, isNetworkFsType, parseMountinfo, type FsTypeInfo } from './fstype.js';
export { CHUNK_CACHE_TTL_MS, type LastWarmedAt } from './mapping.js';
export { checkName } from './paths.js';
export { toGuardTask } from './from-cvat.js';
export { nodeFs } from './fsio.js';
export { inotifyDoctorCheck, inotifyWatchLimit, type InotifyLimit, type WatchLimitVerdict } from './inotify-limit.js';
export { affectedTask, compileTask } from './mapping.js';
export type { GuardFs, DirWatcher } from './fsio.js';
export type * from './types.js';
// For the vault (src/vault/): the same expected-file list the guard builds.
export { ShareIndex } from './share-index.js';
export { addTaskToIndex, taskSignature, type TaskFilesContext } from './task-files.js';
export { ShareRootResolver } from './paths.js';
export { DirLister, findRelatedImages, isPointCloudName } from './related.js';
// For `impact`: the index's answer to "what reads these paths", and typed paths resolved inside the share.
export { impactOf, isUnder, slotsUnder, type ImpactResult, type TaskImpact } from './impact.js';
export { resolveUserPath, type UserPathVerdict } from './user-path.js';
export { WORKER_MOUNT_FIX, WORKER_MOUNT_MESSAGE, chunkFilesOf, explainChunkFailure, readableHere, type Readability } from './worker-mount.js';
