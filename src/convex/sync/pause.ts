/**
 * Pausing a connection (connections.pause / connections.resume, owners and
 * admins). A paused connection has status "inactive" and its nextSyncAt far
 * in the future (PAUSED_NEXT_SYNC_AT), beyond the range the sync cron reads
 * from the by_nextSyncAt index: the cron never reads, groups or schedules
 * it, so it costs no function call and no read. A sync already running when
 * it is paused stores nothing (sync/outcomes.ts recordSyncOutcomes). Resuming
 * makes it "pending", due at once within the manual-sync allowance, else
 * at the next slot (sync/firstSync.ts, as credential writes), so pausing
 * and resuming cannot force syncs. Its metrics and history stay.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { recordAudit } from "../audit/trail";
import { firstSyncAt } from "./firstSync";
import { NOT_SCHEDULED } from "./policy";
import type { ConnectionStatus } from "../validators";

/** nextSyncAt of a paused connection: later than any cron run's "now" (policy.ts NOT_SCHEDULED). */
export const PAUSED_NEXT_SYNC_AT = NOT_SCHEDULED;

/** Pauses (`paused: true`) or resumes a connection; returns its status. Does nothing if it already is. */
export async function setPaused(
  ctx: MutationCtx,
  connection: Doc<"connections">,
  actorId: Id<"users">,
  paused: boolean,
): Promise<ConnectionStatus> {
  if ((connection.status === "inactive") === paused) return connection.status;
  const now = Date.now();
  const status = paused ? "inactive" : "pending";
  await ctx.db.patch("connections", connection._id, {
    status,
    nextSyncAt: paused
      ? PAUSED_NEXT_SYNC_AT
      : await firstSyncAt(ctx, { connectionId: connection._id, projectId: connection.projectId, userId: actorId }, now),
    updatedAt: now,
  });
  await recordAudit(ctx, {
    action: paused ? "connection.paused" : "connection.resumed",
    actorId,
    projectId: connection.projectId,
    targetTable: "connections",
    targetId: connection._id,
  });
  return status;
}
