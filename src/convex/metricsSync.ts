/**
 * Metric syncs: a connection's credentials are decrypted inside an action,
 * its service's metrics are read over HTTP and stored. Used on demand by
 * connections.syncMetrics and for every connection by the cron (crons.ts),
 * which pages through connections and schedules one small action each.
 *
 * Decrypted credentials live only in local variables of one action run:
 * never stored, returned, logged or put in an error.
 */
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Id } from "./_generated/dataModel";
import { internalAction, internalMutation, internalQuery, type ActionCtx } from "./_generated/server";
import { recordAudit } from "./audit";
import { requireProjectRole } from "./auth";
import { consumeRateLimit } from "./rateLimits";
import { appError, appErrorCode } from "./errors";
import { isProviderError } from "./integrations/providerError";
import { findIntegration } from "./integrations/registry";
import type { MetricPoint } from "./integrations/types";
import { decryptCredentials, loadKeyring, readRootSalt } from "./secrets";
import { connectionStatusValidator, syncResultValidator, type Credentials, type SyncResult } from "./validators";

/** Window of windowed metrics (e.g. Plausible visitors): the last 24 hours. */
export const SYNC_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Most points one sync stores (a Stripe account has one pair per currency). */
export const MAX_METRICS_PER_SYNC = 50;
/** Connections the cron reads per page; each gets its own scheduled action. */
export const SYNC_PAGE_SIZE = 20;
/**
 * Statuses the cron syncs, in this order; "inactive" connections are paused.
 * A sync only moves a connection to "active" (success) or "error" (failure),
 * so in this order a connection is met twice in one run only if it just
 * synced successfully, and skipIfSyncedSince skips that second visit.
 */
export const CRON_SYNC_STATUSES = ["error", "pending", "active"] as const;
/** Weight of the latest sync in healthScore, a moving average of successes (0–100). */
const HEALTH_WEIGHT = 0.3;

/** The health score after a sync: recent syncs weigh most, one failure from 100 gives 70. */
export function nextHealthScore(previous: number, succeeded: boolean): number {
  const score = (1 - HEALTH_WEIGHT) * previous + HEALTH_WEIGHT * (succeeded ? 100 : 0);
  return Math.min(100, Math.max(0, Math.round(score)));
}

const syncTargetValidator = v.object({
  projectId: v.id("projects"),
  service: v.string(),
  status: connectionStatusValidator,
  encryptedCredentials: v.union(v.string(), v.null()),
  /** The row's secret version (bound into v2 ciphertext; absent on old rows). */
  secretVersion: v.optional(v.number()),
  /** The deployment's root salt (null before anything was encrypted in format v2), read here so decrypting costs no extra call. */
  rootSalt: v.union(v.string(), v.null()),
  lastSyncedAt: v.union(v.number(), v.null()),
  /** When the credentials were last written: a sync's outcome only applies to the credentials it used. */
  updatedAt: v.number(),
});

const syncOutcomeValidator = v.union(
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
  }),
  v.object({ kind: v.literal("decryption_failed"), code: v.string() }),
);

/**
 * Throws unless `userId` may sync this connection now: a member of its
 * project (NOT_FOUND for a missing connection, FORBIDDEN for a non-member),
 * within the connection's manual-sync rate limit (RATE_LIMITED).
 */
export const authorizeManualSync = internalMutation({
  args: { connectionId: v.id("connections"), userId: v.union(v.id("users"), v.null()) },
  returns: v.null(),
  handler: async (ctx, { connectionId, userId }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) throw appError("NOT_FOUND", "Connection not found");
    await requireProjectRole(ctx, userId, connection.projectId, "member");
    await consumeRateLimit(ctx, "manualSync", connectionId);
    return null;
  },
});

/** What a sync needs from a connection row (ciphertext included: internal only), or null. */
export const loadForSync = internalQuery({
  args: { connectionId: v.id("connections") },
  returns: v.union(syncTargetValidator, v.null()),
  handler: async (ctx, { connectionId }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) return null;
    return {
      projectId: connection.projectId,
      service: connection.service,
      status: connection.status,
      encryptedCredentials: connection.encryptedCredentials ?? null,
      ...(connection.secretVersion !== undefined ? { secretVersion: connection.secretVersion } : {}),
      rootSalt: await readRootSalt(ctx.db),
      lastSyncedAt: connection.lastSyncedAt ?? null,
      updatedAt: connection.updatedAt,
    };
  },
});

/**
 * Stores a sync's outcome in one transaction: metrics (success) or a safe
 * lastError (failure; earlier metrics are kept), status and healthScore, and
 * the audit entry of a decryption failure. Null when the connection was
 * removed meanwhile; dropped (nothing written) when its credentials were
 * replaced meanwhile.
 */
export const recordSyncOutcome = internalMutation({
  args: {
    connectionId: v.id("connections"),
    actorId: v.optional(v.id("users")),
    /** The connection's updatedAt when the sync loaded its credentials. */
    credentialsUpdatedAt: v.number(),
    outcome: syncOutcomeValidator,
  },
  returns: v.union(syncResultValidator, v.null()),
  handler: async (ctx, { connectionId, actorId, credentialsUpdatedAt, outcome }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) return null;
    const now = Date.now();
    const audit = { actorId, projectId: connection.projectId, targetTable: "connections", targetId: connectionId };
    if (connection.updatedAt !== credentialsUpdatedAt) {
      // The credentials were replaced while this sync ran with the old ones: its outcome says nothing
      // about the new ones, so the connection stays as updateCredentials left it (a failed decryption
      // is still audited).
      if (outcome.kind === "decryption_failed") {
        await recordAudit(ctx, { ...audit, action: "connection.decryption_failed", detail: outcome.code });
      }
      return { status: connection.status, metricsStored: 0 };
    }

    if (outcome.kind === "synced") {
      for (const point of outcome.metrics) {
        await ctx.db.insert("metrics", { connectionId, projectId: connection.projectId, ...point, timestamp: now });
      }
      await ctx.db.patch("connections", connectionId, {
        status: "active",
        healthScore: nextHealthScore(connection.healthScore, true),
        lastSyncedAt: now,
        lastError: undefined,
      });
      return { status: "active" as const, metricsStored: outcome.metrics.length };
    }

    const error =
      outcome.kind === "failed" ? outcome.error : `Stored credentials could not be decrypted (${outcome.code})`;
    await ctx.db.patch("connections", connectionId, {
      status: "error",
      healthScore: nextHealthScore(connection.healthScore, false),
      lastError: error,
    });
    // Operators watch `npx convex logs`: ids and safe codes only.
    console.warn(
      `sync of connection ${connectionId} failed: ${outcome.kind === "failed" ? outcome.detail : `decryption_failed:${outcome.code}`}`,
    );
    if (outcome.kind === "decryption_failed") {
      await recordAudit(ctx, { ...audit, action: "connection.decryption_failed", detail: outcome.code });
    }
    return { status: "error" as const, metricsStored: 0, error };
  },
});

/** Finite values with sane names, at most MAX_METRICS_PER_SYNC of them. */
function storablePoints(points: MetricPoint[]): MetricPoint[] {
  return points
    .filter((point) => point.name.length > 0 && point.name.length <= 200 && Number.isFinite(point.value))
    .slice(0, MAX_METRICS_PER_SYNC)
    .map(({ name, value }) => ({ name, value }));
}

export interface SyncOptions {
  /** The user who asked for the sync (absent for the cron). */
  actorId?: Id<"users">;
  /** Skip connections that synced successfully at or after this time (cron runs). */
  skipIfSyncedSince?: number;
}

/**
 * Syncs one connection: load (internal query) → decrypt here → fetch the
 * service's metrics → store the outcome (internal mutation). Provider
 * failures are recorded on the connection and returned, not thrown. A
 * decryption failure is audited, marks the connection, and is rethrown as
 * the ConvexError it is (DECRYPTION_FAILED or ENCRYPTION_UNAVAILABLE).
 * Null when the connection does not exist.
 * Shared by connections.syncMetrics and syncConnection: an action calling
 * this helper avoids a second action invocation.
 */
export async function syncConnectionNow(
  ctx: ActionCtx,
  connectionId: Id<"connections">,
  { actorId, skipIfSyncedSince }: SyncOptions = {},
): Promise<SyncResult | null> {
  const target = await ctx.runQuery(internal.metricsSync.loadForSync, { connectionId });
  if (!target) return null;
  if (target.status === "inactive") return { status: "inactive", metricsStored: 0 };
  if (skipIfSyncedSince !== undefined && target.lastSyncedAt !== null && target.lastSyncedAt >= skipIfSyncedSince) {
    return { status: target.status, metricsStored: 0 };
  }
  const record = (outcome: typeof syncOutcomeValidator.type) =>
    ctx.runMutation(internal.metricsSync.recordSyncOutcome, {
      connectionId,
      actorId,
      credentialsUpdatedAt: target.updatedAt,
      outcome,
    });

  const integration = findIntegration(target.service);
  if (!integration) {
    return record({ kind: "failed", error: `Unknown service "${target.service}"`, detail: "unknown_service" });
  }
  if (target.encryptedCredentials === null) {
    return record({
      kind: "failed",
      error: "No encrypted credentials are stored for this connection; update its credentials",
      detail: "no_credentials",
    });
  }

  let credentials: Credentials;
  try {
    const keyring = loadKeyring(target.rootSalt);
    ({ credentials } = await decryptCredentials(
      keyring,
      target.projectId,
      connectionId,
      target.encryptedCredentials,
      target.secretVersion,
    ));
  } catch (error) {
    await record({ kind: "decryption_failed", code: appErrorCode(error) ?? "DECRYPTION_FAILED" });
    throw appErrorCode(error) ? error : appError("DECRYPTION_FAILED", "Stored credentials could not be decrypted");
  }
  // Audited before the credentials are used, so no use goes unrecorded.
  await ctx.runMutation(internal.audit.record, {
    action: "connection.credentials_decrypted",
    actorId,
    projectId: target.projectId,
    targetTable: "connections",
    targetId: connectionId,
    detail: actorId ? "sync" : "sync (cron)",
  });

  const now = Date.now();
  let points: MetricPoint[];
  try {
    points = await integration.fetchMetrics(credentials, { from: now - SYNC_WINDOW_MS, to: now });
  } catch (error) {
    if (isProviderError(error)) {
      return record({ kind: "failed", error: error.message, detail: `provider_error:${error.kind}` });
    }
    await record({ kind: "failed", error: `${integration.name} sync failed unexpectedly`, detail: "internal" });
    throw error;
  }
  return record({ kind: "synced", metrics: storablePoints(points) });
}

/** Syncs one connection (scheduled by the cron's pages). */
export const syncConnection = internalAction({
  args: { connectionId: v.id("connections"), skipIfSyncedSince: v.optional(v.number()) },
  returns: v.union(syncResultValidator, v.null()),
  handler: async (ctx, { connectionId, skipIfSyncedSince }): Promise<SyncResult | null> => {
    return syncConnectionNow(ctx, connectionId, { skipIfSyncedSince });
  },
});

/**
 * One page of a cron run: schedules syncConnection for up to SYNC_PAGE_SIZE
 * connections of one status (by_status index), then schedules itself for the
 * next page or status. The cron starts it with statusIndex 0 and no cursor.
 */
export const scheduleSyncPage = internalMutation({
  args: {
    statusIndex: v.number(),
    cursor: v.union(v.string(), v.null()),
    /** When the run started; set by the first page. */
    runStartedAt: v.optional(v.number()),
  },
  returns: v.null(),
  handler: async (ctx, { statusIndex, cursor, runStartedAt = Date.now() }) => {
    const status = CRON_SYNC_STATUSES[statusIndex];
    if (!status) return null;
    const page = await ctx.db
      .query("connections")
      .withIndex("by_status", (q) => q.eq("status", status))
      .paginate({ numItems: SYNC_PAGE_SIZE, cursor });
    for (const connection of page.page) {
      await ctx.scheduler.runAfter(0, internal.metricsSync.syncConnection, {
        connectionId: connection._id,
        skipIfSyncedSince: runStartedAt,
      });
    }
    const next = page.isDone ? { statusIndex: statusIndex + 1, cursor: null } : { statusIndex, cursor: page.continueCursor };
    if (next.statusIndex < CRON_SYNC_STATUSES.length) {
      await ctx.scheduler.runAfter(0, internal.metricsSync.scheduleSyncPage, { ...next, runStartedAt });
    }
    return null;
  },
});
