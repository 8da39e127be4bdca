/**
 * Forwarding path for one release (docs/architecture.md, "Deploying"): the
 * rate limits moved to access/rateLimits.ts. A cleanup batch scheduled
 * under this path before the deploy (`rateLimits:deleteRefilledBuckets`)
 * still runs; crons.ts and new batches use the new path. Delete this file in
 * the release after the one that moved it.
 */
export { deleteRefilledBuckets } from "./access/rateLimits";
