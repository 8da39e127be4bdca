/**
 * Connections: a project's credentials for one third-party service. The
 * credentials are validated against the service's fields, stored only as
 * ciphertext bound to the connection (storedSecrets/encryption.ts), and shown to clients only
 * as masked hints computed when they are written.
 */
import { v, type ObjectType } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation } from "./_generated/server";
import { recordAudit, recordUserAct } from "./audit/trail";
import { requireProjectRole } from "./access/roles";
import { appError, recordedAppError } from "./errors";
import { connectionAction, userAction } from "./access/actionBuilders";
import {
  checkArgs,
  connectionMutation,
  connectionQuery,
  projectMutation,
  projectQuery,
  secretConnectionMutation,
  secretProjectMutation,
} from "./access/builders";
import { cleanName } from "./access/input";
import { credentialHints, validateCredentials } from "./providers/integrations/registry";
import { MAX_CONNECTIONS, assertOwnerCanAddConnection } from "./access/caps";
import { syncConnections } from "./sync/run";
import { firstSyncAt } from "./sync/firstSync";
import { setPaused } from "./sync/pause";
import { deleteHistoryBatch } from "./jobs/connectionHistory";
import { finishFlow } from "./oauth/finish";
import { queueRevocation } from "./oauth/revocation";
import { beginOAuthFlow } from "./oauth/start";
import { MANUAL_SYNC_LIMITS } from "./access/rateLimits";
import { encryptCredentials, loadKeyringForWrite, nextSecretVersion } from "./storedSecrets/encryption";
import { connectionHintsOf, connectionNameOf } from "./upgrade/defaults";
import {
  connectionStatusValidator,
  connectionSummaryValidator,
  credentialsValidator,
  syncResultValidator,
  type SyncResult,
} from "./validators";


/** The client-visible fields of a connection, picked one by one. */
function toConnectionSummary(connection: Doc<"connections">) {
  return {
    connectionId: connection._id,
    projectId: connection.projectId,
    service: connection.service,
    name: connectionNameOf(connection),
    credentialHints: connectionHintsOf(connection),
    status: connection.status,
    healthScore: connection.healthScore,
    lastError: connection.lastError,
    lastSyncedAt: connection.lastSyncedAt,
    createdAt: connection.createdAt,
    updatedAt: connection.updatedAt,
  };
}

/**
 * Creates a connection (owners and admins). The row is inserted first so
 * the ciphertext can be bound to its id, then patched in the same mutation.
 * CONFLICT when the project already has MAX_CONNECTIONS connections;
 * LIMIT_REACHED when its owner has MAX_CONNECTIONS_PER_USER across their
 * projects (access/caps.ts). Synced at once only within the manual-sync
 * allowance (sync/firstSync.ts).
 */
const createArgs = {
  projectId: v.id("projects"),
  service: v.string(),
  name: v.optional(v.string()),
  credentials: credentialsValidator,
};

export const create = secretProjectMutation({
  minimumRole: "admin",
  returns: v.id("connections"),
  // Arguments checked here, not by Convex: they hold the credentials (access/builders.ts, checkArgs).
  handler: async (ctx, raw: ObjectType<typeof createArgs>) => {
    const args = checkArgs(raw, createArgs);
    // The id the builder normalized (args.projectId is only known to be a string).
    const projectId = ctx.project._id;
    const { integration, credentials } = validateCredentials(args.service, args.credentials);
    const name = cleanName(args.name ?? integration.name, "Connection name");
    const existing = await ctx.db
      .query("connections")
      .withIndex("by_projectId", (q) => q.eq("projectId", projectId))
      .take(MAX_CONNECTIONS);
    if (existing.length >= MAX_CONNECTIONS) {
      throw appError("CONFLICT", `A project can have at most ${MAX_CONNECTIONS} connections: remove one first`);
    }
    await assertOwnerCanAddConnection(ctx, projectId);
    const keyring = await loadKeyringForWrite(ctx);
    const now = Date.now();
    const connectionId = await ctx.db.insert("connections", {
      projectId,
      service: integration.id,
      name,
      credentialHints: credentialHints(integration.id, credentials),
      status: "pending",
      healthScore: 100,
      createdBy: ctx.user._id,
      createdAt: now,
      updatedAt: now,
    });
    const secretVersion = nextSecretVersion(undefined);
    const encryptedCredentials = await encryptCredentials(keyring, projectId, connectionId, credentials, secretVersion);
    const nextSyncAt = await firstSyncAt(ctx, { connectionId, projectId, userId: ctx.user._id }, now);
    await ctx.db.patch("connections", connectionId, { encryptedCredentials, secretVersion, nextSyncAt });
    await recordUserAct(ctx, "connection.created", projectId, "connections", connectionId, `service: ${integration.id}`);
    return connectionId;
  },
});

/** The project's connections (members), metadata and masked hints only. */
export const list = projectQuery({
  args: {},
  returns: v.array(connectionSummaryValidator),
  handler: async (ctx, { projectId }) => {
    const connections = await ctx.db
      .query("connections")
      .withIndex("by_projectId", (q) => q.eq("projectId", projectId))
      .take(MAX_CONNECTIONS);
    return connections.map(toConnectionSummary);
  },
});

/** One connection (members of its project), metadata and masked hints only. */
export const get = connectionQuery({
  args: {},
  returns: connectionSummaryValidator,
  handler: async (ctx) => toConnectionSummary(ctx.connection),
});

/**
 * Replaces a connection's credentials (owners and admins): validated like on
 * create, re-encrypted, hints recomputed, any legacy plaintext removed. The
 * connection goes back to "pending" (also from needs_reauth: syncing
 * resumes) and is tried at once within the manual-sync allowance, else at
 * its next slot (sync/firstSync.ts).
 */
const updateCredentialsArgs = { connectionId: v.id("connections"), credentials: credentialsValidator };

export const updateCredentials = secretConnectionMutation({
  minimumRole: "admin",
  returns: v.null(),
  // Arguments checked here, not by Convex: they hold the credentials (access/builders.ts, checkArgs).
  handler: async (ctx, raw: ObjectType<typeof updateCredentialsArgs>) => {
    const args = checkArgs(raw, updateCredentialsArgs);
    const { connection } = ctx;
    const { integration, credentials } = validateCredentials(connection.service, args.credentials);
    const keyring = await loadKeyringForWrite(ctx);
    // A new version: the ciphertext this row held before no longer decrypts, even if restored.
    const secretVersion = nextSecretVersion(connection.secretVersion);
    const encryptedCredentials = await encryptCredentials(keyring, connection.projectId, connection._id, credentials, secretVersion);
    const now = Date.now();
    await ctx.db.patch("connections", connection._id, {
      encryptedCredentials,
      secretVersion,
      credentials: undefined,
      credentialHints: credentialHints(integration.id, credentials),
      // A row of the original Dashtray gets the name it was shown with.
      ...(connection.name === undefined ? { name: connectionNameOf(connection) } : {}),
      status: "pending",
      lastError: undefined,
      syncFailures: undefined,
      updatedAt: now,
      nextSyncAt: await firstSyncAt(ctx, { connectionId: connection._id, projectId: connection.projectId, userId: ctx.user._id }, now),
    });
    await recordUserAct(ctx, "connection.credentials_updated", connection.projectId, "connections", connection._id);
    return null;
  },
});

/**
 * Starts connecting an OAuth integration (owners and admins): returns the
 * provider's authorization URL for the dashboard to open. `settings` are the
 * integration's non-secret fields (e.g. { propertyId } for
 * google_analytics); `connectionId` reconnects an existing connection of the
 * same service (e.g. one in needs_reauth) instead of creating one. The
 * provider sends the browser to /oauth/callback, which keeps the code and
 * redirects to DASHBOARD_URL with ?oauth=received&flow=…; the dashboard
 * then calls finishOAuth (see oauth/start.ts).
 */
export const startOAuth = projectMutation({
  args: {
    service: v.string(),
    settings: credentialsValidator,
    name: v.optional(v.string()),
    connectionId: v.optional(v.id("connections")),
  },
  minimumRole: "admin",
  returns: v.object({ authorizationUrl: v.string() }),
  handler: async (ctx, args) => {
    const authorizationUrl = await beginOAuthFlow(ctx, {
      userId: ctx.user._id,
      projectId: args.projectId,
      service: args.service,
      settings: args.settings,
      name: args.name,
      connectionId: args.connectionId,
    });
    return { authorizationUrl };
  },
});

/**
 * Finishes an OAuth flow after the provider's callback: `flow` is the
 * completion token the callback put in the dashboard URL
 * (?oauth=received&flow=…). Only the signed-in user who started the flow,
 * still an admin of its project, can finish it; it is single use and
 * expires 10 minutes after startOAuth. Exchanges the code and stores the
 * tokens; returns the connection's id.
 */
const finishOAuthArgs = { flow: v.string() };

export const finishOAuth = userAction({
  returns: v.object({ connectionId: v.id("connections") }),
  // Arguments checked here, not by Convex: `flow` is a bearer token for the user's grant (access/builders.ts, checkArgs).
  handler: async (ctx, raw: ObjectType<typeof finishOAuthArgs>) => {
    const { flow } = checkArgs(raw, finishOAuthArgs);
    // Explicit type: inferring it would be circular through _generated/api.
    const connectionId: Id<"connections"> = await finishFlow(ctx, ctx.identity.tokenIdentifier, flow);
    return { connectionId };
  },
});

/**
 * The row of a new OAuth connection, inserted by finishOAuth once the code
 * was exchanged and before its tokens are written (they are bound to its
 * id): `needs_reauth` until oauth/tokenStore.writeGrant stores them. Null when the
 * user is no longer an admin or the project is full.
 */
export const insertOAuthConnection = internalMutation({
  args: {
    projectId: v.id("projects"),
    userId: v.id("users"),
    service: v.string(),
    name: v.string(),
    credentialHints: v.record(v.string(), v.string()),
    /** The account's keyed hash (oauth/accounts.ts), known since the exchange: the row holds it before its grant. */
    oauthAccountHash: v.optional(v.string()),
  },
  returns: v.id("connections"),
  handler: async (ctx, args) => {
    // NOT_FOUND when the project was removed during the code exchange; FORBIDDEN when the user is no longer an admin.
    await requireProjectRole(ctx, args.userId, args.projectId, "admin");
    const existing = await ctx.db
      .query("connections")
      .withIndex("by_projectId", (q) => q.eq("projectId", args.projectId))
      .take(MAX_CONNECTIONS);
    if (existing.length >= MAX_CONNECTIONS) throw appError("CONFLICT", "The project cannot take another connection: remove one first");
    await assertOwnerCanAddConnection(ctx, args.projectId);
    const now = Date.now();
    const connectionId = await ctx.db.insert("connections", {
      projectId: args.projectId,
      service: args.service,
      name: args.name,
      credentialHints: args.credentialHints,
      ...(args.oauthAccountHash === undefined ? {} : { oauthAccountHash: args.oauthAccountHash }),
      status: "needs_reauth",
      lastError: "The sign-in did not complete; connect the account again",
      healthScore: 100,
      secretVersion: 0,
      createdBy: args.userId,
      createdAt: now,
      updatedAt: now,
    });
    await recordAudit(ctx, {
      action: "connection.created",
      actorId: args.userId,
      projectId: args.projectId,
      targetTable: "connections",
      targetId: connectionId,
      detail: `service: ${args.service}`,
    });
    return connectionId;
  },
});

/**
 * Removes a connection and its metrics (owners and admins). The first batch
 * of metrics goes in this mutation; any rest in self-scheduling batches.
 * An OAuth connection's grant is revoked at the provider afterwards, best
 * effort (oauth/revocation.ts queueRevocation); its tokens leave the row now.
 */
export const remove = connectionMutation({
  args: {},
  minimumRole: "admin",
  returns: v.null(),
  handler: async (ctx) => {
    const { connection } = ctx;
    await queueRevocation(ctx, connection);
    await ctx.db.delete("connections", connection._id);
    await deleteHistoryBatch(ctx, connection._id);
    await recordUserAct(ctx, "connection.removed", connection.projectId, "connections", connection._id, `service: ${connection.service}`);
    return null;
  },
});

/**
 * Pauses a connection (owners and admins): never synced by the cron, at no
 * cost, until resumed (sync/pause.ts); its history stays. Returns its status.
 */
export const pause = connectionMutation({
  args: {},
  minimumRole: "admin",
  returns: connectionStatusValidator,
  handler: (ctx) => setPaused(ctx, ctx.connection, ctx.user._id, true),
});

/** Resumes a paused connection (owners and admins): "pending", synced by the cron's next run. */
export const resume = connectionMutation({
  args: {},
  minimumRole: "admin",
  returns: connectionStatusValidator,
  handler: (ctx) => setPaused(ctx, ctx.connection, ctx.user._id, false),
});

/** Deletes a removed connection's remaining metric points and rollups, one batch per run (jobs/connectionHistory.ts). */
export const deleteMetrics = internalMutation({
  args: { connectionId: v.id("connections") },
  returns: v.null(),
  handler: async (ctx, { connectionId }) => {
    await deleteHistoryBatch(ctx, connectionId);
    return null;
  },
});

/**
 * Syncs a connection's metrics now (any member of its project) and moves its
 * next scheduled sync one interval ahead. A provider failure (bad key, rate
 * limit, outage, timeout) is returned as status "error" with a safe message
 * and kept on the connection; earlier metrics stay. Stored credentials that
 * do not decrypt throw DECRYPTION_FAILED (or ENCRYPTION_UNAVAILABLE); an
 * unexpected failure (e.g. integration code that could not read an answer)
 * throws INTERNAL with a fixed message, after its outcome is stored. Rate limited per connection, per
 * project and per user (RATE_LIMITED), to spare the providers.
 */
export const syncMetrics = connectionAction({
  args: {},
  minimumRole: "member",
  rateLimits: MANUAL_SYNC_LIMITS,
  returns: syncResultValidator,
  handler: async (ctx): Promise<SyncResult> => {
    const [synced] = await syncConnections(ctx, [ctx.connectionId], { actorId: ctx.userId, projectId: ctx.projectId });
    // Stored on the connection first; the error names the failure's class in its cause, never its message.
    if (synced?.failure) throw recordedAppError(synced.failure.data, synced.failure.causeName);
    if (!synced?.result) throw appError("NOT_FOUND", "Connection not found");
    return synced.result;
  },
});
