/**
 * What a sync's outcome does to its connection (recordSyncOutcomes applies
 * a group's outcomes in one transaction): metric points stored, status,
 * health, lastError, and when the connection is due next (sync/policy.ts:
 * the next slot after a success, exponential backoff after a transient
 * failure, never again after an authentication failure until the user acts).
 */
import { v } from "convex/values";
import type { Doc, Id } from "../_generated/dataModel";
import { internalMutation, type MutationCtx } from "../_generated/server";
import { recordAudit } from "../audit/trail";
import { recordRollups } from "../metricHistory/rollups";
import { syncResultValidator, type SyncResult } from "../validators";
import { NOT_SCHEDULED, nextAttemptAfterFailure, nextHealthScore, nextSyncSlot, syncIntervalMs } from "./policy";

export const syncOutcomeValidator = v.union(
  v.object({
    kind: v.literal("synced"),
    metrics: v.array(v.object({ name: v.string(), value: v.number() })),
  }),
  v.object({
    kind: v.literal("failed"),
    /** Safe message for connections.lastError. */
    error: v.string(),
    /** Safe code for the logs, e.g. "provider_error:unauthorized". */
    detail: v.string(),
    /** The provider refused the credentials (401/403): only the user can fix it. */
    needsUser: v.optional(v.boolean()),
    /** The provider rate limited the sync and said when to try again (ms since the epoch): not due before. */
    retryAt: v.optional(v.number()),
  }),
  v.object({ kind: v.literal("decryption_failed"), code: v.string() }),
);
export type SyncOutcome = typeof syncOutcomeValidator.type;

/** Which write of the credentials a sync used (secretVersion; rows from before versions existed are at 0). */
export function credentialsVersionOf(connection: Doc<"connections">): number {
  return connection.secretVersion ?? 0;
}

/**
 * Stores one successful sync's metric points, all at `timestamp`, and folds
 * them into the hourly and daily rollups (metricHistory/rollups.ts): the one place
 * metric points are written.
 */
export async function storeMetricPoints(
  ctx: MutationCtx,
  connection: Doc<"connections">,
  points: readonly { name: string; value: number }[],
  timestamp: number,
): Promise<void> {
  for (const point of points) {
    await ctx.db.insert("metrics", { connectionId: connection._id, projectId: connection.projectId, ...point, timestamp });
  }
  await recordRollups(ctx, { connectionId: connection._id, projectId: connection.projectId }, points, timestamp);
}

/** Text added to lastError when syncing stopped until the user acts. */
export const USER_ACTION_SUFFIX = "; syncing is paused until the credentials are updated";

/**
 * Applies one outcome to its connection (which still holds the credentials
 * version the sync used) and returns what the caller sees.
 */
export async function applySyncOutcome(
  ctx: MutationCtx,
  connection: Doc<"connections">,
  outcome: SyncOutcome,
  { actorId, now, intervalMs }: { actorId?: Id<"users">; now: number; intervalMs: number },
): Promise<SyncResult> {
  const connectionId = connection._id;
  if (outcome.kind === "synced") {
    await storeMetricPoints(ctx, connection, outcome.metrics, now);
    await ctx.db.patch("connections", connectionId, {
      status: "active",
      healthScore: nextHealthScore(connection.healthScore, true),
      lastSyncedAt: now,
      lastError: undefined,
      syncFailures: undefined,
      nextSyncAt: nextSyncSlot(now, intervalMs),
    });
    return { status: "active", metricsStored: outcome.metrics.length };
  }
  const failures = (connection.syncFailures ?? 0) + 1;
  const healthScore = nextHealthScore(connection.healthScore, false);
  // Operators watch `npx convex logs`: ids and safe codes only.
  const detail = outcome.kind === "failed" ? outcome.detail : `decryption_failed:${outcome.code}`;
  if (outcome.kind === "failed" && outcome.needsUser) {
    const error = `${outcome.error}${USER_ACTION_SUFFIX}`;
    await ctx.db.patch("connections", connectionId, {
      status: "needs_reauth",
      healthScore,
      lastError: error,
      syncFailures: failures,
      nextSyncAt: NOT_SCHEDULED,
    });
    await recordAudit(ctx, {
      action: "connection.needs_reauth",
      actorId,
      projectId: connection.projectId,
      targetTable: "connections",
      targetId: connectionId,
      detail,
    });
    console.warn(`sync of connection ${connectionId} failed: ${detail}; parked until the user acts`);
    return { status: "needs_reauth", metricsStored: 0, error };
  }
  const error = outcome.kind === "failed" ? outcome.error : `Stored credentials could not be decrypted (${outcome.code})`;
  await ctx.db.patch("connections", connectionId, {
    status: "error",
    healthScore,
    lastError: error,
    syncFailures: failures,
    nextSyncAt: nextAttemptAfterFailure(now, failures, intervalMs, outcome.kind === "failed" ? outcome.retryAt : undefined),
  });
  console.warn(`sync of connection ${connectionId} failed: ${detail} (${failures} in a row)`);
  return { status: "error", metricsStored: 0, error };
}

/**
 * Stores the outcomes of one group in one transaction (applySyncOutcome),
 * plus the audit entry of each decryption failure. An outcome is null when
 * its connection was removed meanwhile, and dropped (nothing written but a
 * decryption failure's audit entry) when its credentials were replaced
 * meanwhile: it says nothing about the new ones.
 */
export const recordSyncOutcomes = internalMutation({
  args: {
    actorId: v.optional(v.id("users")),
    outcomes: v.array(
      v.object({ connectionId: v.id("connections"), credentialsVersion: v.number(), outcome: syncOutcomeValidator }),
    ),
  },
  returns: v.array(v.union(syncResultValidator, v.null())),
  handler: async (ctx, { actorId, outcomes }) => {
    const now = Date.now();
    const intervalMs = syncIntervalMs();
    const results: (SyncResult | null)[] = [];
    for (const { connectionId, credentialsVersion, outcome } of outcomes) {
      const connection = await ctx.db.get("connections", connectionId);
      if (!connection) {
        results.push(null);
        continue;
      }
      if (outcome.kind === "decryption_failed") {
        await recordAudit(ctx, {
          action: "connection.decryption_failed",
          actorId,
          projectId: connection.projectId,
          targetTable: "connections",
          targetId: connectionId,
          detail: outcome.code,
        });
      }
      if (credentialsVersionOf(connection) !== credentialsVersion || connection.status === "inactive") {
        // Replaced while this sync ran with the old ones: the connection stays as the write left it.
        // Paused meanwhile: it stays paused, and nothing is stored.
        results.push({ status: connection.status, metricsStored: 0 });
        continue;
      }
      results.push(await applySyncOutcome(ctx, connection, outcome, { actorId, now, intervalMs }));
    }
    return results;
  },
});
