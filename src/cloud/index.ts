/** The cloud-storage guard's public API (see guard.ts for how it meets the share guard). */
export { ListBudget, UNLIMITED } from './budget.js';
export {
  cloudExpectation,
  directoryOf,
  relatedDirOf,
  type CloudTaskExpectation,
  type ExpectedObject,
  type ExpectedRelatedDir,
  type FrameUse,
} from './expected.js';
export { CloudGuard, cloudExitCode, formatCloudReport, type CloudProblem, type CloudRoundResult, type StorageReport } from './guard.js';
export { CONTENT_PAGE_SIZE, listDirectory, storageStatus } from './listing.js';
