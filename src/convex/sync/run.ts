/**
 * The action side of a sync group: connections of any projects, in three
 * function calls whatever the group's size (up to SYNC_GROUP_SIZE):
 *
 * 1. beginSync (below, a mutation) reads the connections, ciphertext
 *    included, and records one `connection.credentials_decrypted` audit
 *    entry per connection it hands out for decryption: the audit comes
 *    before any decryption, so no use of decrypted credentials goes
 *    unrecorded whatever happens to the action next;
 * 2. the action decrypts them with one keyring (one PBKDF2 per master key
 *    the group's v2 values use; the cron groups by key, see
 *    sync/policy.ts groupKeyOf) and calls the providers,
 *    PROVIDER_CONCURRENCY at a time;
 * 3. metricsSync.recordSyncOutcomes (a mutation) stores every outcome.
 *
 * Decrypted credentials live only in local variables of one action run:
 * never stored, returned, logged or put in an error.
 */
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import { internalMutation, type ActionCtx } from "../_generated/server";
import { LEGACY_FORMAT_AUDIT_NOTE, recordAudit } from "../audit/trail";
import { describeCiphertext } from "../lib/cipher";
import { v } from "convex/values";
import { appError, appErrorCode } from "../errors";
import { isProviderError } from "../providers/errors";
import { findIntegration } from "../providers/integrations/registry";
import type { Integration, MetricPoint } from "../providers/integrations/types";
import type { Keyring } from "../lib/keyring";
import { oauthAccess } from "../oauth/refresh";
import { decryptCredentials, loadKeyring, readEncryptionSettings } from "../storedSecrets/encryption";
import { connectionStatusValidator, keyIdOrderValidator, type Credentials, type SyncResult } from "../validators";
import { credentialsVersionOf, type SyncOutcome } from "./outcomes";
import { MAX_METRICS_PER_SYNC, PROVIDER_CONCURRENCY, SYNC_WINDOW_MS, USER_ACTION_KINDS } from "./policy";

/** A connection as beginSync hands it out (validators in metricsSync.ts). */
export interface SyncTarget {
  connectionId: Id<"connections">;
  projectId: Id<"projects">;
  service: string;
  status: SyncResult["status"];
  encryptedCredentials: string | null;
  credentialsVersion: number;
  lastError: string | null;
}

const syncTargetValidator = v.object({
  connectionId: v.id("connections"),
  projectId: v.id("projects"),
  service: v.string(),
  status: connectionStatusValidator,
  encryptedCredentials: v.union(v.string(), v.null()),
  /** Which write of the credentials this is (secretVersion). */
  credentialsVersion: v.number(),
  /** The safe lastError, returned for connections that are not synced (needs_reauth). */
  lastError: v.union(v.string(), v.null()),
});

/**
 * Hands out what a sync needs from the given connections (ciphertext
 * included: internal only) and records, before any decryption, one
 * `connection.credentials_decrypted` audit entry per connection the action
 * will decrypt (known service, ciphertext stored, neither paused nor
 * needs_reauth); values in the original Dashtray format are audited as
 * such. Connections that no longer exist, or (with `projectId`) belong to
 * another project, are left out.
 */
export const beginSync = internalMutation({
  args: {
    connectionIds: v.array(v.id("connections")),
    actorId: v.optional(v.id("users")),
    projectId: v.optional(v.id("projects")),
  },
  returns: v.object({
    /** The deployment's root salt, read here so decrypting costs no extra call. */
    rootSalt: v.union(v.string(), v.null()),
    /** Key id hints of the last rotation job (storedSecrets/encryption.ts loadKeyring). */
    keyIdOrder: v.union(keyIdOrderValidator, v.null()),
    /** Whether the original Dashtray format is refused (storedSecrets/encryption.ts LegacyPolicy). */
    legacyRetired: v.boolean(),
    targets: v.array(syncTargetValidator),
  }),
  handler: async (ctx, { connectionIds, actorId, projectId }) => {
    const targets: (typeof syncTargetValidator.type)[] = [];
    for (const connectionId of connectionIds) {
      const connection = await ctx.db.get("connections", connectionId);
      if (!connection || (projectId !== undefined && connection.projectId !== projectId)) continue;
      const encryptedCredentials = connection.encryptedCredentials ?? null;
      targets.push({
        connectionId,
        projectId: connection.projectId,
        service: connection.service,
        status: connection.status,
        encryptedCredentials,
        credentialsVersion: credentialsVersionOf(connection),
        lastError: connection.lastError ?? null,
      });
      const skipped = connection.status === "inactive" || connection.status === "needs_reauth";
      if (skipped || encryptedCredentials === null || !findIntegration(connection.service)) continue;
      const legacy = describeCiphertext(encryptedCredentials).format === "legacy" ? `; ${LEGACY_FORMAT_AUDIT_NOTE}` : "";
      await recordAudit(ctx, {
        action: "connection.credentials_decrypted",
        actorId,
        projectId: connection.projectId,
        targetTable: "connections",
        targetId: connectionId,
        detail: (actorId ? "sync" : "sync (cron)") + legacy,
      });
    }
    return { ...(await readEncryptionSettings(ctx.db)), targets };
  },
});

/** One connection's part of a group sync. */
export interface ConnectionSync {
  connectionId: Id<"connections">;
  /** The connection's status after the sync; null when it does not exist (in the given project). */
  result: SyncResult | null;
  /** What a manual sync rethrows after the outcome is stored: a decryption failure's ConvexError, or an unexpected error. */
  thrown?: unknown;
}

interface Decrypted {
  target: SyncTarget;
  integration: Integration;
  credentials: Credentials;
}

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

/** The stored result of a connection the sync does not call the provider for. */
function skipped(target: SyncTarget): SyncResult {
  return { status: target.status, metricsStored: 0, ...(target.lastError ? { error: target.lastError } : {}) };
}

/** The outcome of one provider call. */
async function fetchOutcome(item: Decrypted, thrown: Map<Id<"connections">, unknown>): Promise<SyncOutcome> {
  const { integration, credentials, target } = item;
  try {
    const now = Date.now();
    return { kind: "synced", metrics: storablePoints(await integration.fetchMetrics(credentials, { from: now - SYNC_WINDOW_MS, to: now })) };
  } catch (error) {
    if (isProviderError(error)) {
      const needsUser = USER_ACTION_KINDS.includes(error.kind);
      return { kind: "failed", error: error.message, detail: `provider_error:${error.kind}`, ...(needsUser ? { needsUser } : {}) };
    }
    thrown.set(target.connectionId, error);
    return { kind: "failed", error: `${integration.name} sync failed unexpectedly`, detail: "internal" };
  }
}

/**
 * Syncs the given connections (of any projects; with `projectId`, only
 * those of that project): see the file comment. Provider failures are
 * stored on their connection and returned, never thrown; so are decryption
 * failures (audited), whose error is in `thrown`. Paused (`inactive`) and
 * `needs_reauth` connections are left alone. Shared by the cron's
 * metricsSync.syncGroup and connections.syncMetrics.
 */
export async function syncConnections(
  ctx: ActionCtx,
  connectionIds: readonly Id<"connections">[],
  { actorId, projectId }: { actorId?: Id<"users">; projectId?: Id<"projects"> } = {},
): Promise<ConnectionSync[]> {
  const { rootSalt, keyIdOrder, legacyRetired, targets } = await ctx.runMutation(internal.sync.run.beginSync, {
    connectionIds: [...connectionIds],
    ...(actorId ? { actorId } : {}),
    ...(projectId ? { projectId } : {}),
  });
  const results = new Map<Id<"connections">, ConnectionSync>();
  const outcomes: { target: SyncTarget; outcome: SyncOutcome }[] = [];
  const thrown = new Map<Id<"connections">, unknown>();
  const decrypted: Decrypted[] = [];
  // One keyring for the whole group, loaded only if something needs decrypting.
  let keyring: Keyring | undefined;

  for (const target of targets) {
    if (target.status === "inactive" || target.status === "needs_reauth") {
      // Paused, or only the user can fix it (new credentials, a new grant): the provider is not asked.
      results.set(target.connectionId, { connectionId: target.connectionId, result: skipped(target) });
      continue;
    }
    const integration = findIntegration(target.service);
    if (!integration) {
      outcomes.push({ target, outcome: { kind: "failed", error: `Unknown service "${target.service}"`, detail: "unknown_service" } });
      continue;
    }
    if (target.encryptedCredentials === null) {
      const error = "No encrypted credentials are stored for this connection; update its credentials";
      outcomes.push({ target, outcome: { kind: "failed", error, detail: "no_credentials", needsUser: true } });
      continue;
    }
    try {
      keyring ??= loadKeyring(rootSalt, keyIdOrder);
      const { credentials } = await decryptCredentials(
        keyring,
        target.projectId,
        target.connectionId,
        target.encryptedCredentials,
        target.credentialsVersion,
        { legacyRetired },
      );
      decrypted.push({ target, integration, credentials });
    } catch (error) {
      const code = appErrorCode(error);
      outcomes.push({ target, outcome: { kind: "decryption_failed", code: code ?? "DECRYPTION_FAILED" } });
      thrown.set(target.connectionId, code ? error : appError("DECRYPTION_FAILED", "Stored credentials could not be decrypted"));
    }
  }

  const fetched = await mapBounded(decrypted, PROVIDER_CONCURRENCY, async (item): Promise<{ target: SyncTarget; outcome: SyncOutcome } | null> => {
    if (item.integration.oauth && keyring) {
      // The access token, refreshed first if it expires soon (once per version, whoever else syncs now).
      const access = await oauthAccess(ctx, {
        connectionId: item.target.connectionId,
        projectId: item.target.projectId,
        integration: item.integration,
        keyring,
        secretVersion: item.target.credentialsVersion,
        credentials: item.credentials,
      });
      if (access.kind === "gone") return null;
      if (access.kind === "needs_reauth") {
        // Already stored (status, lastError, audit, never due) by oauth/tokenStore.markNeedsReauth.
        const result: SyncResult = { status: "needs_reauth", metricsStored: 0, error: access.error };
        results.set(item.target.connectionId, { connectionId: item.target.connectionId, result });
        return null;
      }
      if (access.kind === "failed") {
        return { target: item.target, outcome: { kind: "failed", error: access.error.message, detail: `oauth_refresh:${access.error.kind}` } };
      }
      // A refresh wrote a new version: the outcome belongs to it.
      item = { ...item, target: { ...item.target, credentialsVersion: access.secretVersion }, credentials: access.credentials };
    }
    return { target: item.target, outcome: await fetchOutcome(item, thrown) };
  });
  for (const entry of fetched) if (entry) outcomes.push(entry);

  if (outcomes.length > 0) {
    const stored = await ctx.runMutation(internal.metricsSync.recordSyncOutcomes, {
      ...(actorId ? { actorId } : {}),
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
