/** Cloud storage through CVAT's API: what tasks expect, listing and status, the LIST budget (the guard's cloud source, src/guard/shell/cloud-source.ts, builds on them). */
export { ListBudget, UNLIMITED } from './budget.js';
export { directoryOf, relatedDirOf } from './expected.js';
export { CONTENT_PAGE_SIZE, listDirectory, storageStatus } from './listing.js';
