/**
 * Forwarding paths for one release: the sync engine moved to sync/
 * (sync/schedule.ts scheduleDueSyncs, sync/run.ts syncGroup,
 * sync/outcomes.ts recordSyncOutcomes). Functions scheduled, or running,
 * under these paths when this version is deployed (a cron run's next page,
 * a group action and the outcome mutation it calls) still find them here;
 * the same function objects are exported, so both paths behave alike.
 * Delete this file in the release after (docs/architecture.md, "Deploying").
 */
export { scheduleDueSyncs } from "./sync/schedule";
export { syncGroup } from "./sync/run";
export { recordSyncOutcomes } from "./sync/outcomes";
