/**
 * Forwarding module (issue 17): removing a project moved to
 * jobs/projectRemoval.ts. `projectRemoval:purgeBatch` is the same function
 * object under its old path, for batches scheduled before the deploy (the
 * second pass runs 31 minutes after the first). Delete this file in the
 * release after the one that moved it (docs/architecture.md, "Deploying").
 */
export { purgeBatch } from "./jobs/projectRemoval";
