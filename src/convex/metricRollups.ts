/**
 * Forwarding module (issue 17): the rollups moved to metricHistory/, their
 * backfill to metricHistory/backfill.ts (`metricHistory/backfill:run`).
 * `metricRollups:backfill` is the same function object under its old path,
 * for batches scheduled before the deploy and for runbooks that name it.
 * Delete this file in the release after the one that moved it
 * (docs/architecture.md, "Deploying").
 */
export { run as backfill } from "./metricHistory/backfill";
