/**
 * Metric syncs, per project: one action loads a group of one project's
 * connections (internal query, ciphertext included), decrypts them with one
 * keyring, records the decryptions in the audit log (one mutation), calls
 * the providers a few at a time, and stores every outcome, metric point and
 * failure audit entry in one more mutation. A group action therefore costs
 * 4 function executions whatever its size (up to SYNC_GROUP_SIZE).
 *
 * The cron (crons.ts) runs scheduleDueSyncs every minute: it reads the
 * connections whose nextSyncAt has passed (by_nextSyncAt index), moves their
 * nextSyncAt to their project's next slot (so no later run picks them
 * again; nextSyncSlot keeps a project's connections due together) and
 * schedules one syncGroup action per project group. A run's cost follows the
 * connections due, not the size of the table. connections.syncMetrics (a
 * manual sync) runs the same steps for one connection in its own action.
 *
 * Decrypted credentials live only in local variables of one action run:
 * never stored, returned, logged or put in an error.
 */
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalAction, internalMutation, internalQuery, type ActionCtx } from "./_generated/server";
import { env } from "./env";
import { LEGACY_FORMAT_AUDIT_NOTE, recordAudit } from "./audit";
import { appError, appErrorCode } from "./errors";
import { isProviderError } from "./providers/errors";
import { findIntegration } from "./providers/integrations/registry";
import type { Integration, MetricPoint } from "./providers/integrations/types";
import { envNumber } from "./lib/envNumber";
import type { Keyring } from "./lib/keyring";
import { recordRollups } from "./metricRollups";
import { oauthAccess } from "./oauth";
import { decryptCredentials, loadKeyring, readEncryptionSettings } from "./secrets";
import { connectionStatusValidator, keyIdOrderValidator, syncResultValidator, type Credentials, type SyncResult } from "./validators";

/** Window of windowed metrics (e.g. Plausible visitors): the last 24 hours. */
export const SYNC_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Most points one sync stores (a Stripe account has one pair per currency). */
export const MAX_METRICS_PER_SYNC = 50;
/** Default time between two syncs of a connection; SYNC_INTERVAL_MINUTES overrides it. */
export const DEFAULT_SYNC_INTERVAL_MINUTES = 15;
/** Most connections one group action syncs (a project with more is split into several groups). */
export const SYNC_GROUP_SIZE = 25;
/** Provider requests one group action has in flight at once. */
export const PROVIDER_CONCURRENCY = 4;
/** Due connections one scheduling mutation reads; a run with more continues in another mutation. */
export const DUE_PAGE_SIZE = 250;
/** Most group actions one cron run starts; connections beyond stay due and go in the next run. */
export const MAX_GROUPS_PER_RUN = 200;
/** Weight of the latest sync in healthScore, a moving average of successes (0–100). */
const HEALTH_WEIGHT = 0.3;

/** The health score after a sync: recent syncs weigh most, one failure from 100 gives 70. */
export function nextHealthScore(previous: number, succeeded: boolean): number {
  const score = (1 - HEALTH_WEIGHT) * previous + HEALTH_WEIGHT * (succeeded ? 100 : 0);
  return Math.min(100, Math.max(0, Math.round(score)));
}

/** Time between two syncs of a connection, in ms: SYNC_INTERVAL_MINUTES (at least 1) if set to a number, else 15 minutes. */
export function syncIntervalMs(): number {
  const minutes = envNumber(env.SYNC_INTERVAL_MINUTES, DEFAULT_SYNC_INTERVAL_MINUTES, { atLeast: 1 });
  return Math.round(minutes * 60_000);
}

/** FNV-1a (32 bits) of a string: a cheap, stable spread of ids; not cryptographic. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * When a connection of `projectId` synced at `now` is due next: the
 * project's first slot more than half an interval after `now`. A project's
 * slots are one interval apart at a phase of its own (from its id), so all
 * its connections fall due together after their first sync (one group
 * action, however and whenever they were created or manually synced), and
 * projects spread over the interval instead of all falling due at once.
 * The result lies between half an interval and 1.5 intervals after `now`.
 */
export function nextSyncSlot(projectId: Id<"projects">, now: number, intervalMs: number = syncIntervalMs()): number {
  const phase = fnv1a(projectId) % intervalMs;
  const earliest = now + intervalMs / 2;
  return phase + (Math.floor((earliest - phase) / intervalMs) + 1) * intervalMs;
}

/**
 * Which write of the credentials a sync used: an outcome is applied only if
 * the row still holds that write. The secret version grows with every
 * credentials write (and is bound into the ciphertext), so two writes in
 * the same millisecond still differ; rows written before versions existed
 * are at 0.
 */
function credentialsVersionOf(connection: Doc<"connections">): number {
  return connection.secretVersion ?? 0;
}

const syncTargetValidator = v.object({
  connectionId: v.id("connections"),
  service: v.string(),
  status: connectionStatusValidator,
  encryptedCredentials: v.union(v.string(), v.null()),
  /** Which write of the credentials this is (credentialsVersionOf). */
  credentialsVersion: v.number(),
  /** The safe lastError, returned for connections that are not synced (needs_reauth). */
  lastError: v.union(v.string(), v.null()),
});
type SyncTarget = typeof syncTargetValidator.type;

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
type SyncOutcome = typeof syncOutcomeValidator.type;

const connectionOutcomeValidator = v.object({
  connectionId: v.id("connections"),
  /** The credentialsVersion the sync loaded. */
  credentialsVersion: v.number(),
  outcome: syncOutcomeValidator,
});

/**
 * What a sync needs from the given connections of one project (ciphertext
 * included: internal only). Connections that no longer exist or belong to
 * another project are left out.
 */
export const loadSyncGroup = internalQuery({
  args: { projectId: v.id("projects"), connectionIds: v.array(v.id("connections")) },
  returns: v.object({
    /** The deployment's root salt, read here so decrypting costs no extra call. */
    rootSalt: v.union(v.string(), v.null()),
    /** Key id hints of the last rotation job (secrets.ts loadKeyring). */
    keyIdOrder: v.union(keyIdOrderValidator, v.null()),
    /** Whether the original Dashtray format is refused (secrets.ts LegacyPolicy). */
    legacyRetired: v.boolean(),
    targets: v.array(syncTargetValidator),
  }),
  handler: async (ctx, { projectId, connectionIds }) => {
    const targets: SyncTarget[] = [];
    for (const connectionId of connectionIds) {
      const connection = await ctx.db.get("connections", connectionId);
      if (!connection || connection.projectId !== projectId) continue;
      targets.push({
        connectionId,
        service: connection.service,
        status: connection.status,
        encryptedCredentials: connection.encryptedCredentials ?? null,
        credentialsVersion: credentialsVersionOf(connection),
        lastError: connection.lastError ?? null,
      });
    }
    return { ...(await readEncryptionSettings(ctx.db)), targets };
  },
});

/**
 * One `connection.credentials_decrypted` audit entry per connection, written
 * after decryption and before any use: whatever happens to the action next,
 * no use of decrypted credentials goes unrecorded. One call per group.
 */
export const recordDecryptions = internalMutation({
  args: {
    projectId: v.id("projects"),
    actorId: v.optional(v.id("users")),
    connectionIds: v.array(v.id("connections")),
    /** Those of connectionIds whose credentials were in the original Dashtray format (no AAD): audited as such. */
    legacyFormatIds: v.optional(v.array(v.id("connections"))),
  },
  returns: v.null(),
  handler: async (ctx, { projectId, actorId, connectionIds, legacyFormatIds = [] }) => {
    for (const connectionId of connectionIds) {
      const legacy = legacyFormatIds.includes(connectionId) ? `; ${LEGACY_FORMAT_AUDIT_NOTE}` : "";
      await recordAudit(ctx, {
        action: "connection.credentials_decrypted",
        actorId,
        projectId,
        targetTable: "connections",
        targetId: connectionId,
        detail: (actorId ? "sync" : "sync (cron)") + legacy,
      });
    }
    return null;
  },
});

/**
 * Stores the outcomes of one group in one transaction, per connection:
 * metrics (success) or a safe lastError (failure; earlier metrics are kept),
 * status, healthScore, the next sync time (nextSyncSlot), and the
 * audit entry of a decryption failure. An outcome is null when its
 * connection was removed meanwhile, and dropped (nothing written but a
 * decryption failure's audit entry) when its credentials were replaced
 * meanwhile: it says nothing about the new ones.
 */
export const recordSyncOutcomes = internalMutation({
  args: {
    projectId: v.id("projects"),
    actorId: v.optional(v.id("users")),
    outcomes: v.array(connectionOutcomeValidator),
  },
  returns: v.array(v.union(syncResultValidator, v.null())),
  handler: async (ctx, { projectId, actorId, outcomes }) => {
    const now = Date.now();
    const nextSyncAt = nextSyncSlot(projectId, now);
    const results: (SyncResult | null)[] = [];
    for (const { connectionId, credentialsVersion, outcome } of outcomes) {
      const connection = await ctx.db.get("connections", connectionId);
      if (!connection || connection.projectId !== projectId) {
        results.push(null);
        continue;
      }
      const audit = { actorId, projectId, targetTable: "connections", targetId: connectionId };
      if (outcome.kind === "decryption_failed") {
        await recordAudit(ctx, { ...audit, action: "connection.decryption_failed", detail: outcome.code });
      }
      if (credentialsVersionOf(connection) !== credentialsVersion || connection.status === "inactive") {
        // The credentials were replaced while this sync ran with the old ones: the connection stays
        // as updateCredentials left it (due soon, to try the new ones). Paused meanwhile: it stays paused.
        results.push({ status: connection.status, metricsStored: 0 });
        continue;
      }
      if (outcome.kind === "synced") {
        for (const point of outcome.metrics) {
          await ctx.db.insert("metrics", { connectionId, projectId, ...point, timestamp: now });
        }
        await recordRollups(ctx, { connectionId, projectId }, outcome.metrics, now);
        await ctx.db.patch("connections", connectionId, {
          status: "active",
          healthScore: nextHealthScore(connection.healthScore, true),
          lastSyncedAt: now,
          lastError: undefined,
          nextSyncAt,
        });
        results.push({ status: "active", metricsStored: outcome.metrics.length });
        continue;
      }
      const error =
        outcome.kind === "failed" ? outcome.error : `Stored credentials could not be decrypted (${outcome.code})`;
      await ctx.db.patch("connections", connectionId, {
        status: "error",
        healthScore: nextHealthScore(connection.healthScore, false),
        lastError: error,
        nextSyncAt,
      });
      // Operators watch `npx convex logs`: ids and safe codes only.
      console.warn(
        `sync of connection ${connectionId} failed: ${outcome.kind === "failed" ? outcome.detail : `decryption_failed:${outcome.code}`}`,
      );
      results.push({ status: "error", metricsStored: 0, error });
    }
    return results;
  },
});

/** Finite values with sane names, at most MAX_METRICS_PER_SYNC of them. */
function storablePoints(points: MetricPoint[]): MetricPoint[] {
  return points
    .filter((point) => point.name.length > 0 && point.name.length <= 200 && Number.isFinite(point.value))
    .slice(0, MAX_METRICS_PER_SYNC)
    .map(({ name, value }) => ({ name, value }));
}

/** Runs `work` on every item with at most `limit` running at once; results in item order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** One connection's part of a group sync. */
export interface ConnectionSync {
  connectionId: Id<"connections">;
  /** The connection's status after the sync; null when it does not exist (in this project). */
  result: SyncResult | null;
  /**
   * What a manual sync rethrows after the outcome is stored: the ConvexError
   * of a decryption failure, or an unexpected (non-provider) error.
   */
  thrown?: unknown;
}

/** A connection whose credentials decrypted, ready for its provider call. */
interface Decrypted {
  target: SyncTarget;
  integration: Integration;
  credentials: Credentials;
}

/**
 * Syncs some connections of one project: load (1 query) → decrypt them all
 * with one keyring → audit the decryptions (1 mutation) → call the providers,
 * PROVIDER_CONCURRENCY at a time → store every outcome (1 mutation).
 * Provider failures are stored on their connection and returned, never
 * thrown; so are decryption failures (audited), whose error is in `thrown`.
 * `inactive` (paused) connections are left alone. Shared by the cron's
 * syncGroup and connections.syncMetrics (which calls it in its own action).
 */
export async function syncConnections(
  ctx: ActionCtx,
  projectId: Id<"projects">,
  connectionIds: readonly Id<"connections">[],
  { actorId }: { actorId?: Id<"users"> } = {},
): Promise<ConnectionSync[]> {
  const { rootSalt, keyIdOrder, legacyRetired, targets } = await ctx.runQuery(internal.metricsSync.loadSyncGroup, {
    projectId,
    connectionIds: [...connectionIds],
  });
  const results = new Map<Id<"connections">, ConnectionSync>();
  const outcomes: { target: SyncTarget; outcome: SyncOutcome }[] = [];
  const thrown = new Map<Id<"connections">, unknown>();
  const decrypted: Decrypted[] = [];
  const legacyFormatIds: Id<"connections">[] = [];
  // One keyring for the whole group (one PBKDF2 root per master key used), loaded only if something needs decrypting.
  let keyring: Keyring | undefined;

  for (const target of targets) {
    if (target.status === "inactive") {
      results.set(target.connectionId, { connectionId: target.connectionId, result: { status: "inactive", metricsStored: 0 } });
      continue;
    }
    if (target.status === "needs_reauth") {
      // A dead OAuth grant: only an admin reconnecting helps, so the provider is not asked again.
      const result: SyncResult = { status: "needs_reauth", metricsStored: 0, ...(target.lastError ? { error: target.lastError } : {}) };
      results.set(target.connectionId, { connectionId: target.connectionId, result });
      continue;
    }
    const integration = findIntegration(target.service);
    if (!integration) {
      outcomes.push({ target, outcome: { kind: "failed", error: `Unknown service "${target.service}"`, detail: "unknown_service" } });
      continue;
    }
    if (target.encryptedCredentials === null) {
      const error = "No encrypted credentials are stored for this connection; update its credentials";
      outcomes.push({ target, outcome: { kind: "failed", error, detail: "no_credentials" } });
      continue;
    }
    try {
      keyring ??= loadKeyring(rootSalt, keyIdOrder);
      const { credentials, secret } = await decryptCredentials(
        keyring,
        projectId,
        target.connectionId,
        target.encryptedCredentials,
        target.credentialsVersion,
        { legacyRetired },
      );
      if (secret.format === "legacy") legacyFormatIds.push(target.connectionId);
      decrypted.push({ target, integration, credentials });
    } catch (error) {
      const code = appErrorCode(error);
      outcomes.push({ target, outcome: { kind: "decryption_failed", code: code ?? "DECRYPTION_FAILED" } });
      thrown.set(target.connectionId, code ? error : appError("DECRYPTION_FAILED", "Stored credentials could not be decrypted"));
    }
  }

  if (decrypted.length > 0) {
    // Audited before the credentials are used, so no use goes unrecorded.
    await ctx.runMutation(internal.metricsSync.recordDecryptions, {
      projectId,
      actorId,
      connectionIds: decrypted.map(({ target }) => target.connectionId),
      ...(legacyFormatIds.length > 0 ? { legacyFormatIds } : {}),
    });
    const now = Date.now();
    const range = { from: now - SYNC_WINDOW_MS, to: now };
    const fetched = await mapBounded(decrypted, PROVIDER_CONCURRENCY, async (item): Promise<{ target: SyncTarget; outcome: SyncOutcome } | null> => {
      const { integration } = item;
      let { target, credentials } = item;
      if (integration.oauth && keyring) {
        // The access token, refreshed first if it expires soon (once per version, whoever else syncs now).
        const access = await oauthAccess(ctx, {
          connectionId: target.connectionId,
          projectId,
          integration,
          keyring,
          secretVersion: target.credentialsVersion,
          credentials,
        });
        if (access.kind === "gone") return null;
        if (access.kind === "needs_reauth") {
          // Already stored (status, lastError, audit) by oauth.markNeedsReauth.
          const result: SyncResult = { status: "needs_reauth", metricsStored: 0, error: access.error };
          results.set(target.connectionId, { connectionId: target.connectionId, result });
          return null;
        }
        if (access.kind === "failed") {
          return { target, outcome: { kind: "failed", error: access.error.message, detail: `oauth_refresh:${access.error.kind}` } };
        }
        // A refresh wrote a new version: the outcome belongs to it.
        target = { ...target, credentialsVersion: access.secretVersion };
        credentials = access.credentials;
      }
      try {
        const outcome: SyncOutcome = { kind: "synced", metrics: storablePoints(await integration.fetchMetrics(credentials, range)) };
        return { target, outcome };
      } catch (error) {
        if (isProviderError(error)) {
          const outcome: SyncOutcome = { kind: "failed", error: error.message, detail: `provider_error:${error.kind}` };
          return { target, outcome };
        }
        thrown.set(target.connectionId, error);
        const outcome: SyncOutcome = { kind: "failed", error: `${integration.name} sync failed unexpectedly`, detail: "internal" };
        return { target, outcome };
      }
    });
    for (const entry of fetched) if (entry) outcomes.push(entry);
  }

  if (outcomes.length > 0) {
    const stored = await ctx.runMutation(internal.metricsSync.recordSyncOutcomes, {
      projectId,
      actorId,
      outcomes: outcomes.map(({ target, outcome }) => ({
        connectionId: target.connectionId,
        credentialsVersion: target.credentialsVersion,
        outcome,
      })),
    });
    outcomes.forEach(({ target }, index) => {
      const connectionId = target.connectionId;
      results.set(connectionId, { connectionId, result: stored[index] ?? null, thrown: thrown.get(connectionId) });
    });
  }
  return connectionIds.map((connectionId) => results.get(connectionId) ?? { connectionId, result: null });
}

/** Syncs one group of one project's connections (scheduled by scheduleDueSyncs). */
export const syncGroup = internalAction({
  args: { projectId: v.id("projects"), connectionIds: v.array(v.id("connections")) },
  returns: v.array(v.union(syncResultValidator, v.null())),
  handler: async (ctx, { projectId, connectionIds }): Promise<(SyncResult | null)[]> => {
    const synced = await syncConnections(ctx, projectId, connectionIds);
    return synced.map(({ result }) => result);
  },
});

/**
 * One page of a cron run: reads up to DUE_PAGE_SIZE connections whose
 * nextSyncAt has passed (or is absent: rows from before scheduling by due
 * time), moves each one's nextSyncAt to its project's next slot (a paused
 * connection is only moved), groups them by project (at most SYNC_GROUP_SIZE per group)
 * and schedules one syncGroup action per group. Continues in another
 * mutation while more are due, up to MAX_GROUPS_PER_RUN groups per run.
 */
export const scheduleDueSyncs = internalMutation({
  args: {
    /** Group actions this run may still start; the cron starts with none (MAX_GROUPS_PER_RUN). */
    groupsLeft: v.optional(v.number()),
  },
  returns: v.null(),
  handler: async (ctx, { groupsLeft = MAX_GROUPS_PER_RUN }) => {
    const now = Date.now();
    const intervalMs = syncIntervalMs();
    const due = await ctx.db
      .query("connections")
      .withIndex("by_nextSyncAt", (q) => q.lte("nextSyncAt", now))
      .take(DUE_PAGE_SIZE + 1);
    const groups: { projectId: Id<"projects">; connectionIds: Id<"connections">[] }[] = [];
    const openGroup = new Map<Id<"projects">, Id<"connections">[]>();
    let budgetReached = false;
    for (const connection of due.slice(0, DUE_PAGE_SIZE)) {
      // Paused connections and dead OAuth grants are not synced, only moved on.
      if (connection.status !== "inactive" && connection.status !== "needs_reauth") {
        let group = openGroup.get(connection.projectId);
        if (!group || group.length >= SYNC_GROUP_SIZE) {
          if (groups.length >= groupsLeft) {
            // Left due: the next run starts with it.
            budgetReached = true;
            continue;
          }
          group = [];
          groups.push({ projectId: connection.projectId, connectionIds: group });
          openGroup.set(connection.projectId, group);
        }
        group.push(connection._id);
      }
      await ctx.db.patch("connections", connection._id, { nextSyncAt: nextSyncSlot(connection.projectId, now, intervalMs) });
    }
    for (const group of groups) await ctx.scheduler.runAfter(0, internal.metricsSync.syncGroup, group);
    const remaining = groupsLeft - groups.length;
    if (due.length > DUE_PAGE_SIZE && !budgetReached && remaining > 0) {
      await ctx.scheduler.runAfter(0, internal.metricsSync.scheduleDueSyncs, { groupsLeft: remaining });
    }
    return null;
  },
});
