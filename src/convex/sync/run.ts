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
 *    storedSecrets/registry.ts derivationGroupOf) and calls the providers,
 *    PROVIDER_CONCURRENCY at a time;
 * 3. sync/outcomes.ts recordSyncOutcomes (a mutation) stores every outcome.
 *
 * Each connection's steps throw where they fail (decryption, the OAuth
 * access token, the provider call); the group catches a failure at the
 * connection it belongs to and records it as that connection's outcome, so
 * a failing connection never stops the others. What is kept of a failure is
 * data (the outcome, and for a manual sync the client-facing error's data
 * and the failing error's name), never the Error itself.
 *
 * Decrypted credentials live only in local variables of one action run:
 * never stored, returned, logged or put in an error.
 */
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import { internalAction, internalMutation, type ActionCtx } from "../_generated/server";
import { LEGACY_FORMAT_AUDIT_NOTE, recordAudit } from "../audit/trail";
import { describeCiphertext } from "../lib/cipher";
import { v } from "convex/values";
import { appErrorData, errorName, type AppErrorData } from "../errors";
import { isProviderError } from "../providers/errors";
import { findIntegration } from "../providers/integrations/registry";
import type { Integration, MetricPoint } from "../providers/integrations/types";
import type { Keyring } from "../lib/keyring";
import { oauthAccess } from "../oauth/refresh";
import { decryptCredentials, loadKeyring, readEncryptionSettings } from "../storedSecrets/encryption";
import { connectionStatusValidator, keyIdOrderValidator, syncResultValidator, type Credentials, type SyncResult } from "../validators";
import { credentialsVersionOf, type SyncOutcome } from "./outcomes";
import { MAX_METRICS_PER_SYNC, PROVIDER_CONCURRENCY, SYNC_WINDOW_MS, USER_ACTION_KINDS } from "./policy";

/** A connection as beginSync hands it out (syncTargetValidator). */
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

/**
 * What a manual sync reports as an error rather than a status, as data: the
 * client-facing error's data (DECRYPTION_FAILED or ENCRYPTION_UNAVAILABLE
 * for credentials that do not decrypt, INTERNAL for an unexpected failure)
 * and the name of the error behind it, for the server log (never its
 * message, which can quote a provider's answer).
 */
export interface SyncFailure {
  data: AppErrorData;
  causeName: string;
}

/** One connection's part of a group sync. */
export interface ConnectionSync {
  connectionId: Id<"connections">;
  /** The connection's status after the sync; null when it does not exist (in the given project). */
  result: SyncResult | null;
  /** Set when the sync failed in a way connections.syncMetrics throws (after the outcome is stored). */
  failure?: SyncFailure;
}

/** Where one connection's sync stands. */
type Step =
  /** Nothing to record: the provider is not asked (paused, needs_reauth), or a refresh already stored the outcome. */
  | { kind: "done"; connectionId: Id<"connections">; result: SyncResult | null }
  /** Decrypted, the provider still to call. */
  | { kind: "decrypted"; target: SyncTarget; integration: Integration; credentials: Credentials }
  /** An outcome to store. */
  | { kind: "outcome"; target: SyncTarget; outcome: SyncOutcome; failure?: SyncFailure };

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

/**
 * Decrypts one connection's credentials, or says why it is not synced.
 * `keyring` is loaded by the caller once per group, on first use.
 */
async function decryptStep(target: SyncTarget, keyring: () => Keyring, legacyRetired: boolean): Promise<Step> {
  if (target.status === "inactive" || target.status === "needs_reauth") {
    // Paused, or only the user can fix it (new credentials, a new grant): the provider is not asked.
    return { kind: "done", connectionId: target.connectionId, result: skipped(target) };
  }
  const integration = findIntegration(target.service);
  if (!integration) {
    return { kind: "outcome", target, outcome: { kind: "failed", error: `Unknown service "${target.service}"`, detail: "unknown_service" } };
  }
  if (target.encryptedCredentials === null) {
    const error = "No encrypted credentials are stored for this connection; update its credentials";
    return { kind: "outcome", target, outcome: { kind: "failed", error, detail: "no_credentials", needsUser: true } };
  }
  try {
    const { credentials } = await decryptCredentials(
      keyring(),
      target.projectId,
      target.connectionId,
      target.encryptedCredentials,
      target.credentialsVersion,
      { legacyRetired },
    );
    return { kind: "decrypted", target, integration, credentials };
  } catch (error) {
    // Client-facing already (storedSecrets/encryption.ts maps the encryption core's errors); anything else is reported as DECRYPTION_FAILED.
    const data = appErrorData(error) ?? { code: "DECRYPTION_FAILED", message: "Stored credentials could not be decrypted" };
    return { kind: "outcome", target, outcome: { kind: "decryption_failed", code: data.code }, failure: { data, causeName: errorName(error) } };
  }
}

/**
 * Calls the provider for one decrypted connection, an OAuth one after
 * getting a fresh access token (oauth/refresh.ts oauthAccess). Throws what the
 * integration or the refresh throws, other than the refresh's known
 * outcomes.
 */
async function fetchStep(ctx: ActionCtx, step: Extract<Step, { kind: "decrypted" }>, keyring: Keyring): Promise<Step> {
  let { target, credentials } = step;
  const { integration } = step;
  if (integration.oauth) {
    // The access token, refreshed first if it expires soon (once per version, whoever else syncs now).
    const access = await oauthAccess(ctx, {
      connectionId: target.connectionId,
      projectId: target.projectId,
      integration,
      keyring,
      secretVersion: target.credentialsVersion,
      credentials,
    });
    if (access.kind === "gone") return { kind: "done", connectionId: target.connectionId, result: null };
    if (access.kind === "needs_reauth") {
      // Already stored (status, lastError, audit, never due) by oauth/tokenStore.markNeedsReauth.
      return { kind: "done", connectionId: target.connectionId, result: { status: "needs_reauth", metricsStored: 0, error: access.error } };
    }
    if (access.kind === "failed") {
      return { kind: "outcome", target, outcome: { kind: "failed", error: access.error.message, detail: `oauth_refresh:${access.error.kind}` } };
    }
    // A refresh wrote a new version: the outcome belongs to it.
    target = { ...target, credentialsVersion: access.secretVersion };
    credentials = access.credentials;
  }
  const now = Date.now();
  const metrics = storablePoints(await integration.fetchMetrics(credentials, { from: now - SYNC_WINDOW_MS, to: now }));
  return { kind: "outcome", target, outcome: { kind: "synced", metrics } };
}

/**
 * The outcome of a connection whose fetchStep threw: a ProviderError is
 * the provider's answer (stored, returned as a status); anything else is
 * unexpected (a bug, an integration that could not read an answer) and is
 * stored with a fixed message, reported to a manual sync as INTERNAL with
 * only the error's name kept.
 */
function fetchFailure(step: Extract<Step, { kind: "decrypted" }>, error: unknown): Step {
  const { target, integration } = step;
  if (isProviderError(error)) {
    const needsUser = USER_ACTION_KINDS.includes(error.kind);
    const outcome: SyncOutcome = {
      kind: "failed",
      error: error.message,
      detail: `provider_error:${error.kind}`,
      ...(needsUser ? { needsUser } : {}),
      ...(error.retryAt === null ? {} : { retryAt: error.retryAt }),
    };
    return { kind: "outcome", target, outcome };
  }
  const message = `${integration.name} sync failed unexpectedly`;
  const causeName = errorName(error);
  return {
    kind: "outcome",
    target,
    outcome: { kind: "failed", error: message, detail: `internal:${causeName}` },
    failure: { data: { code: "INTERNAL", message }, causeName },
  };
}

/**
 * Syncs the given connections (of any projects; with `projectId`, only
 * those of that project): see the file comment. Every connection's outcome
 * is stored and returned, never thrown; a decryption failure is audited,
 * and it and an unexpected failure are described in `failure`. Paused
 * (`inactive`) and `needs_reauth` connections are left alone. Shared by the
 * cron's syncGroup and connections.syncMetrics.
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
  // One keyring for the whole group, loaded only if something needs decrypting.
  let loaded: Keyring | undefined;
  const keyring = () => (loaded ??= loadKeyring(rootSalt, keyIdOrder));

  // Decrypting one after another: the first derives the root key, the others reuse it.
  const decrypted: Step[] = [];
  for (const target of targets) decrypted.push(await decryptStep(target, keyring, legacyRetired));
  const steps = await mapBounded(decrypted, PROVIDER_CONCURRENCY, (step) =>
    step.kind === "decrypted" ? fetchStep(ctx, step, keyring()).catch((error: unknown) => fetchFailure(step, error)) : Promise.resolve(step),
  );

  const results = new Map<Id<"connections">, ConnectionSync>();
  const outcomes = steps.filter((step) => step.kind === "outcome");
  for (const step of steps) {
    if (step.kind === "done") results.set(step.connectionId, { connectionId: step.connectionId, result: step.result });
  }
  if (outcomes.length > 0) {
    const stored = await ctx.runMutation(internal.sync.outcomes.recordSyncOutcomes, {
      ...(actorId ? { actorId } : {}),
      outcomes: outcomes.map(({ target, outcome }) => ({
        connectionId: target.connectionId,
        credentialsVersion: target.credentialsVersion,
        outcome,
      })),
    });
    outcomes.forEach(({ target: { connectionId }, failure }, index) => {
      results.set(connectionId, { connectionId, result: stored[index] ?? null, ...(failure ? { failure } : {}) });
    });
  }
  return connectionIds.map((connectionId) => results.get(connectionId) ?? { connectionId, result: null });
}

/** Syncs one group of connections, of any projects (scheduled by sync/schedule.ts scheduleDueSyncs). */
export const syncGroup = internalAction({
  args: { connectionIds: v.array(v.id("connections")) },
  returns: v.array(v.union(syncResultValidator, v.null())),
  handler: async (ctx, { connectionIds }): Promise<(SyncResult | null)[]> => {
    const synced = await syncConnections(ctx, connectionIds);
    return synced.map(({ result }) => result);
  },
});
