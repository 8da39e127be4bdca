/**
 * Forwarding module (issue 17): retention moved to jobs/retention.ts. These
 * are the same function objects under their old paths, for batches scheduled
 * as `retention:purgeBatch` before the deploy and for runbooks that name
 * `retention:start`. Delete this file in the release after the one that
 * moved it (docs/architecture.md, "Deploying").
 */
export { purgeBatch, start } from "./jobs/retention";
