/**
 * OAuth 2.0 connections (docs/integrations.md, "OAuth integrations"):
 *
 * - Starting a flow (connections.startOAuth → beginOAuthFlow): a random
 *   `state` (stored only as its SHA-256) bound to the user, the project and a
 *   10-minute expiry, and a PKCE verifier stored only as ciphertext; the
 *   provider gets the S256 challenge.
 * - The callback (/oauth/callback → handleOAuthCallback): takes the state
 *   (single use), stores the code encrypted on the flow and redirects to the
 *   dashboard with a new random completion token. It exchanges nothing: it
 *   runs without a Dashtray sign-in.
 * - Finishing (connections.finishOAuth → finishFlow): the signed-in user who
 *   started the flow presents the completion token; the code is exchanged
 *   with the verifier and the tokens stored encrypted in the connection's
 *   credentials.
 * - Fresh access tokens for the sync (oauthAccess): when the access token
 *   expires within REFRESH_MARGIN_MS, one sync claims a refresh lease in a
 *   mutation (compare-and-swap on secretVersion) and calls the provider;
 *   the others wait for the version to change and use the winner's tokens.
 *   The new access token and a rotated refresh token are one ciphertext,
 *   written with secretVersion + 1. `invalid_grant` marks the connection
 *   `needs_reauth`.
 * - Disconnecting (connections.remove → queueRevocation): the ciphertext
 *   moves to oauthRevocations and an action revokes the grant (best effort),
 *   then deletes it.
 *
 * Plaintext tokens, codes and verifiers exist only in local variables of one
 * action: never in a function argument, a return value, a log line or an
 * error. Mutations receive and store ciphertext only.
 */
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalAction, internalMutation, internalQuery, type ActionCtx, type MutationCtx, type QueryCtx } from "./_generated/server";
import { env } from "./env";
import { projectAuditScope, recordAudit } from "./audit/trail";
import { requireProjectRole } from "./access/roles";
import { appError, appErrorCode, providerAppError } from "./errors";
import { cleanName } from "./access/input";
import { authorizationUrl, exchangeCode, oauthClient, refreshTokens, revokeToken, type TokenSet } from "./providers/integrations/oauthClient";
import { providerTimeoutMs } from "./providers/transport";
import { ProviderError, isProviderError } from "./providers/errors";
import { credentialHints, findIntegration, validateOAuthSettings } from "./providers/integrations/registry";
import type { Integration, OAuthProvider } from "./providers/integrations/types";
import { randomToken, sha256Hex } from "./lib/hash";
import type { Keyring } from "./lib/keyring";
import { codeChallengeS256, newCodeVerifier } from "./lib/pkce";
import { recordOAuthCallbackFailure } from "./access/rateLimits";
import {
  decryptAuthorizationCode,
  decryptCodeVerifier,
  encryptAuthorizationCode,
  decryptCredentials,
  encryptCodeVerifier,
  encryptCredentials,
  loadKeyring,
  loadKeyringForWrite,
  readRootSalt,
} from "./storedSecrets/encryption";
import type { Credentials } from "./validators";
import { NOT_SCHEDULED } from "./sync/policy";

/** How long an authorization flow may take, from startOAuth to the callback. */
export const OAUTH_STATE_TTL_MS = 10 * 60_000;
/** Most unfinished flows a project may have at once (each costs a row and a scheduled deletion). */
export const MAX_PENDING_OAUTH_FLOWS = 20;
/** An access token expiring within this margin is refreshed before use. */
export const REFRESH_MARGIN_MS = 5 * 60_000;
/** Shortest refresh lease: how long a lease blocks other refreshers when the provider timeout is the default. */
export const REFRESH_LEASE_MS = 60_000;
/** What a lease adds to the provider timeout: the claim, the encryption and the write around the token request. */
export const REFRESH_LEASE_MARGIN_MS = 30_000;

/**
 * How long a refresh lease lasts: longer than the token request may take
 * (PROVIDER_TIMEOUT_MS, however it is configured) plus a margin, so a lease
 * never expires while its holder may still get an answer and write it.
 */
export function refreshLeaseMs(): number {
  return Math.max(REFRESH_LEASE_MS, providerTimeoutMs() + REFRESH_LEASE_MARGIN_MS);
}
/** How long a sync waits for another sync's refresh before giving up. */
export const REFRESH_WAIT_MS = 20_000;
/** How often a waiting sync looks for the winner's tokens. */
export const REFRESH_POLL_MS = 200;
/** When a queued revocation is deleted even if its action never ran. */
export const REVOCATION_BACKSTOP_MS = 15 * 60_000;
/** Path of the HTTP route the provider redirects to (http.ts). */
export const OAUTH_CALLBACK_PATH = "/oauth/callback";
/** Longest `code` query parameter the callback accepts. */
const MAX_CALLBACK_PARAM_LENGTH = 2048;

/**
 * An OAuth connection's decrypted credentials: the integration's settings
 * and the tokens, stored as one object (fields accessToken, refreshToken,
 * accessTokenExpiresAt next to the settings; no setting may use those names).
 */
interface StoredGrant {
  settings: Credentials;
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: number;
}

/** An integration that connects over OAuth. */
type OAuthIntegration = Integration & { oauth: OAuthProvider };

function oauthIntegration(service: string): OAuthIntegration | null {
  const integration = findIntegration(service);
  return integration?.oauth ? { ...integration, oauth: integration.oauth } : null;
}

/** The credentials object (all strings) a grant is stored as. */
function grantToCredentials(grant: StoredGrant): Credentials {
  return {
    ...grant.settings,
    accessToken: grant.accessToken,
    refreshToken: grant.refreshToken,
    accessTokenExpiresAt: String(grant.accessTokenExpiresAt),
  };
}

/** The grant in decrypted credentials; DECRYPTION_FAILED (no value named) when a token field is missing. */
function credentialsToGrant(credentials: Credentials): StoredGrant {
  const { accessToken, refreshToken, accessTokenExpiresAt, ...settings } = credentials;
  const expiresAt = Number(accessTokenExpiresAt);
  if (!accessToken || !refreshToken || !Number.isFinite(expiresAt)) {
    throw appError("DECRYPTION_FAILED", "Stored OAuth tokens are incomplete");
  }
  return { settings, accessToken, refreshToken, accessTokenExpiresAt: expiresAt };
}

/** What an integration's fetchMetrics gets: the settings and the access token, never the refresh token. */
function fetchCredentials(grant: StoredGrant): Credentials {
  return { ...grant.settings, accessToken: grant.accessToken };
}

/**
 * Ciphertext of a grant for the secret version it will be stored at: the
 * v2 format binds the version in the AAD, so a grant the row held before a
 * refresh no longer decrypts there, even if restored.
 */
function sealGrant(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  secretVersion: number,
  grant: StoredGrant,
): Promise<string> {
  return encryptCredentials(keyring, projectId, connectionId, grantToCredentials(grant), secretVersion);
}

/** The grant in a connection's ciphertext stored at `secretVersion`. */
async function openGrant(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  secretVersion: number,
  encryptedCredentials: string,
): Promise<StoredGrant> {
  // Only this version writes OAuth grants, always in format v2: the original Dashtray's format is never one.
  const { credentials } = await decryptCredentials(keyring, projectId, connectionId, encryptedCredentials, secretVersion, {
    legacyRetired: true,
  });
  return credentialsToGrant(credentials);
}

/** The redirect URI registered with the provider: this deployment's HTTP actions URL + /oauth/callback. */
export function oauthRedirectUri(): string {
  const site = env.CONVEX_SITE_URL?.trim();
  if (!site) throw providerAppError(new ProviderError("OAuth (CONVEX_SITE_URL)", "not_configured"));
  return `${site.replace(/\/+$/, "")}${OAUTH_CALLBACK_PATH}`;
}

// ---------------------------------------------------------------------------
// Starting a flow

/** What connections.startOAuth asks for. */
export interface OAuthFlowRequest {
  userId: Id<"users">;
  projectId: Id<"projects">;
  service: string;
  settings: Credentials;
  name?: string;
  /** Reconnect this connection (same project and service) instead of creating one. */
  connectionId?: Id<"connections">;
}

/**
 * Records a new authorization flow and returns the provider's authorization
 * URL (called by connections.startOAuth, which checks the caller is an
 * admin). The state is random (256 bits), stored as its SHA-256 only; the
 * PKCE verifier is encrypted (salt: project id) because together with an
 * intercepted code it is all a token request needs; the row expires after
 * OAUTH_STATE_TTL_MS and is deleted then if unused.
 */
export async function beginOAuthFlow(ctx: MutationCtx, request: OAuthFlowRequest): Promise<string> {
  const { integration, settings } = validateOAuthSettings(request.service, request.settings);
  let existing: Doc<"connections"> | null = null;
  if (request.connectionId) {
    existing = await ctx.db.get("connections", request.connectionId);
    if (!existing || existing.projectId !== request.projectId) throw appError("NOT_FOUND", "Connection not found");
    if (existing.service !== integration.id) {
      throw appError("INVALID_ARGUMENT", `That connection is not a ${integration.name} connection`);
    }
  }
  const name = cleanName(request.name ?? existing?.name ?? integration.name, "Connection name");
  let clientId: string;
  try {
    clientId = oauthClient(integration, integration.oauth).clientId;
  } catch (error) {
    throw isProviderError(error) ? providerAppError(error) : error;
  }
  const redirectUri = oauthRedirectUri();

  const pending = await ctx.db
    .query("oauthStates")
    .withIndex("by_projectId", (q) => q.eq("projectId", request.projectId))
    .take(MAX_PENDING_OAUTH_FLOWS);
  const now = Date.now();
  const live = pending.filter((flow) => flow.expiresAt > now);
  if (live.length >= MAX_PENDING_OAUTH_FLOWS) {
    // A slot frees when the oldest live flow expires.
    const retryAt = Math.min(...live.map((flow) => flow.expiresAt));
    throw appError("RATE_LIMITED", "Too many sign-ins are in progress for this project; try again in a few minutes", { retryAt });
  }

  const state = randomToken(32);
  const codeVerifier = newCodeVerifier();
  // Also creates the deployment's root salt if nothing was encrypted yet, so the callback can encrypt the tokens.
  const keyring = await loadKeyringForWrite(ctx);
  const stateId = await ctx.db.insert("oauthStates", {
    stateHash: await sha256Hex(state),
    userId: request.userId,
    projectId: request.projectId,
    service: integration.id,
    ...(existing ? { connectionId: existing._id } : {}),
    name,
    settings,
    expiresAt: now + OAUTH_STATE_TTL_MS,
    createdAt: now,
  });
  // Bound to the row's id, so it is patched in after the insert (same transaction).
  const encryptedCodeVerifier = await encryptCodeVerifier(keyring, request.projectId, stateId, codeVerifier);
  await ctx.db.patch("oauthStates", stateId, { encryptedCodeVerifier });
  await ctx.scheduler.runAfter(OAUTH_STATE_TTL_MS, internal.oauth.deleteExpiredFlow, { stateId });
  return authorizationUrl(integration.oauth, {
    clientId,
    redirectUri,
    state,
    codeChallenge: await codeChallengeS256(codeVerifier),
  });
}

/** Deletes a flow nobody finished (scheduled by beginOAuthFlow at its expiry). */
export const deleteExpiredFlow = internalMutation({
  args: { stateId: v.id("oauthStates") },
  returns: v.null(),
  handler: async (ctx, { stateId }) => {
    if (await ctx.db.get("oauthStates", stateId)) await ctx.db.delete("oauthStates", stateId);
    return null;
  },
});

/** A flow that still waits for its callback, found by the SHA-256 of its state. */
async function waitingFlow(ctx: QueryCtx, stateHash: string): Promise<Doc<"oauthStates"> | null> {
  const flow = await ctx.db
    .query("oauthStates")
    .withIndex("by_stateHash", (q) => q.eq("stateHash", stateHash))
    .unique();
  return flow && flow.encryptedCode === undefined && flow.encryptedCodeVerifier !== undefined ? flow : null;
}

/**
 * What the callback needs before it writes anything: the flow waiting for
 * this state (its id, project and whether it expired, and the root salt to
 * encrypt the code with), or null for an unknown state.
 */
export const lookupCallback = internalQuery({
  args: { stateHash: v.string() },
  returns: v.object({
    flow: v.union(
      v.object({ stateId: v.id("oauthStates"), projectId: v.id("projects"), expired: v.boolean(), rootSalt: v.union(v.string(), v.null()) }),
      v.null(),
    ),
  }),
  handler: async (ctx, { stateHash }) => {
    const flow = await waitingFlow(ctx, stateHash);
    return {
      flow: flow && {
        stateId: flow._id,
        projectId: flow.projectId,
        expired: flow.expiresAt <= Date.now(),
        rootSalt: await readRootSalt(ctx.db),
      },
    };
  },
});

/** Counts a callback with an unknown state against its source (rateLimits.ts); until when the source is refused, or null. */
export const recordCallbackFailure = internalMutation({
  args: { source: v.string() },
  returns: v.union(v.number(), v.null()),
  handler: async (ctx, { source }) => recordOAuthCallbackFailure(ctx, source),
});

/**
 * Records what the callback got for the flow waiting for `stateHash`: the
 * encrypted code and the SHA-256 of a new completion token, which replaces
 * the state's hash (so the state cannot be used again, and only the holder
 * of the completion token can find the flow), or a refusal, which deletes
 * the flow. An expired flow is deleted. Exchanges nothing: that waits for
 * the signed-in user (finishFlow).
 */
export const receiveCallback = internalMutation({
  args: {
    stateHash: v.string(),
    outcome: v.union(
      v.object({ kind: v.literal("code"), stateId: v.id("oauthStates"), encryptedCode: v.string(), completionHash: v.string() }),
      v.object({ kind: v.literal("refused") }),
    ),
  },
  returns: v.union(v.literal("received"), v.literal("refused"), v.literal("expired"), v.literal("unknown")),
  handler: async (ctx, { stateHash, outcome }) => {
    const flow = await waitingFlow(ctx, stateHash);
    if (!flow || (outcome.kind === "code" && outcome.stateId !== flow._id)) return "unknown" as const;
    if (flow.expiresAt <= Date.now()) {
      await ctx.db.delete("oauthStates", flow._id);
      return "expired" as const;
    }
    if (outcome.kind === "refused") {
      await ctx.db.delete("oauthStates", flow._id);
      return "refused" as const;
    }
    await ctx.db.patch("oauthStates", flow._id, { stateHash: outcome.completionHash, encryptedCode: outcome.encryptedCode });
    return "received" as const;
  },
});

const takenFlowValidator = v.union(
  v.object({
    kind: v.literal("ok"),
    stateId: v.id("oauthStates"),
    userId: v.id("users"),
    projectId: v.id("projects"),
    service: v.string(),
    connectionId: v.union(v.id("connections"), v.null()),
    name: v.string(),
    settings: v.record(v.string(), v.string()),
    encryptedCodeVerifier: v.string(),
    encryptedCode: v.string(),
    /** The deployment's root salt, for the finishing action's keyring. */
    rootSalt: v.union(v.string(), v.null()),
  }),
  v.object({ kind: v.union(v.literal("unknown"), v.literal("expired"), v.literal("forbidden")) }),
);

/**
 * Takes the flow whose completion token hashes to `completionHash` out of
 * the table (single use: whatever happens next, it cannot be finished
 * again), if it received its code, has not expired, and the caller (by
 * tokenIdentifier) is the user who started it and still an admin of its
 * project. A flow finished by anyone else is deleted all the same.
 */
export const takeReceivedFlow = internalMutation({
  args: { completionHash: v.string(), tokenIdentifier: v.string() },
  returns: takenFlowValidator,
  handler: async (ctx, { completionHash, tokenIdentifier }) => {
    const flow = await ctx.db
      .query("oauthStates")
      .withIndex("by_stateHash", (q) => q.eq("stateHash", completionHash))
      .unique();
    if (!flow?.encryptedCode || !flow.encryptedCodeVerifier) return { kind: "unknown" as const };
    await ctx.db.delete("oauthStates", flow._id);
    if (flow.expiresAt <= Date.now()) return { kind: "expired" as const };
    const caller = await ctx.db
      .query("users")
      .withIndex("by_tokenIdentifier", (q) => q.eq("tokenIdentifier", tokenIdentifier))
      .unique();
    if (caller?._id !== flow.userId) return { kind: "forbidden" as const };
    try {
      await requireProjectRole(ctx, flow.userId, flow.projectId, "admin");
    } catch (error) {
      if (appErrorCode(error)) return { kind: "forbidden" as const };
      throw error;
    }
    return {
      kind: "ok" as const,
      stateId: flow._id,
      userId: flow.userId,
      projectId: flow.projectId,
      service: flow.service,
      connectionId: flow.connectionId ?? null,
      name: flow.name,
      settings: flow.settings,
      encryptedCodeVerifier: flow.encryptedCodeVerifier,
      encryptedCode: flow.encryptedCode,
      rootSalt: await readRootSalt(ctx.db),
    };
  },
});

// ---------------------------------------------------------------------------
// Token storage: compare-and-swap on secretVersion

const grantRowValidator = v.object({
  projectId: v.id("projects"),
  service: v.string(),
  status: v.string(),
  secretVersion: v.number(),
  encryptedCredentials: v.union(v.string(), v.null()),
});

/** The ciphertext and version of a connection's tokens (internal: ciphertext), or null when it is gone. */
export const loadGrant = internalQuery({
  args: { connectionId: v.id("connections") },
  returns: v.union(grantRowValidator, v.null()),
  handler: async (ctx, { connectionId }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) return null;
    return {
      projectId: connection.projectId,
      service: connection.service,
      status: connection.status,
      secretVersion: connection.secretVersion ?? 0,
      encryptedCredentials: connection.encryptedCredentials ?? null,
    };
  },
});

const writeResultValidator = v.union(v.literal("written"), v.literal("changed"), v.literal("lease_lost"), v.literal("gone"));

/**
 * Stores a connection's new token ciphertext if its secretVersion is still
 * `expectedVersion` ("changed" otherwise: someone else wrote first), as
 * version + 1, and drops any refresh lease. "connected" (a finished
 * authorization) also resets the status to pending and the hints.
 * "refreshed" is written only by the holder of the current refresh lease
 * (`leaseId`; "lease_lost" otherwise: another refresher took over after
 * the lease expired) and takes a needs_reauth status back to pending, since
 * the grant demonstrably works.
 */
export const writeGrant = internalMutation({
  args: {
    connectionId: v.id("connections"),
    expectedVersion: v.number(),
    encryptedCredentials: v.string(),
    event: v.union(
      v.object({ kind: v.literal("connected"), actorId: v.id("users"), credentialHints: v.record(v.string(), v.string()) }),
      v.object({ kind: v.literal("refreshed"), leaseId: v.string(), refreshTokenRotated: v.boolean() }),
    ),
  },
  returns: writeResultValidator,
  handler: async (ctx, { connectionId, expectedVersion, encryptedCredentials, event }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) return "gone" as const;
    if ((connection.secretVersion ?? 0) !== expectedVersion) return "changed" as const;
    if (event.kind === "refreshed" && connection.refreshLease?.leaseId !== event.leaseId) return "lease_lost" as const;
    const secret = { encryptedCredentials, secretVersion: expectedVersion + 1, refreshLease: undefined };
    const audit = { projectId: connection.projectId, targetTable: "connections", targetId: connectionId };
    if (event.kind === "connected") {
      const now = Date.now();
      await ctx.db.patch("connections", connectionId, {
        ...secret,
        credentialHints: event.credentialHints,
        status: "pending",
        lastError: undefined,
        updatedAt: now,
        // Due at once: the next cron run syncs it.
        nextSyncAt: now,
      });
      await recordAudit(ctx, { ...audit, action: "connection.oauth_connected", actorId: event.actorId });
    } else {
      const revived = connection.status === "needs_reauth" ? { status: "pending" as const, lastError: undefined } : {};
      await ctx.db.patch("connections", connectionId, { ...secret, ...revived });
      await recordAudit(ctx, {
        ...audit,
        action: "connection.tokens_refreshed",
        detail: event.refreshTokenRotated ? "refresh token rotated" : "access token renewed",
      });
    }
    return "written" as const;
  },
});

/**
 * Claims the right to refresh a connection's tokens at `version`: only one
 * claimant per version calls the provider. "changed" when the tokens were
 * already replaced (read them again), "busy" while another claim's lease
 * runs (wait), "needs_reauth" when the grant is known dead.
 */
export const claimRefresh = internalMutation({
  args: { connectionId: v.id("connections"), version: v.number() },
  returns: v.union(
    v.object({ kind: v.literal("claimed"), leaseId: v.string() }),
    v.object({ kind: v.union(v.literal("changed"), v.literal("busy"), v.literal("gone"), v.literal("needs_reauth")) }),
  ),
  handler: async (ctx, { connectionId, version }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) return { kind: "gone" as const };
    if ((connection.secretVersion ?? 0) !== version) return { kind: "changed" as const };
    if (connection.status === "needs_reauth") return { kind: "needs_reauth" as const };
    const now = Date.now();
    if (connection.refreshLease && connection.refreshLease.expiresAt > now) return { kind: "busy" as const };
    const leaseId = randomToken(16);
    await ctx.db.patch("connections", connectionId, { refreshLease: { leaseId, expiresAt: now + refreshLeaseMs() } });
    return { kind: "claimed" as const, leaseId };
  },
});

/** Gives up a refresh lease after a failed refresh, so the next sync may try at once. */
export const releaseRefresh = internalMutation({
  args: { connectionId: v.id("connections"), leaseId: v.string() },
  returns: v.null(),
  handler: async (ctx, { connectionId, leaseId }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (connection?.refreshLease?.leaseId === leaseId) {
      await ctx.db.patch("connections", connectionId, { refreshLease: undefined });
    }
    return null;
  },
});

/**
 * Marks a connection `needs_reauth` after the provider answered
 * `invalid_grant` to the refresh token of `version`, with a safe lastError
 * and an audit entry. Only the holder of the current refresh lease
 * (`leaseId`) may mark it. "changed" when the tokens were replaced
 * meanwhile (the refused token was already outdated), "lease_lost" when
 * another refresher holds the lease now (it may have spent and rotated the
 * token this caller presented): nothing is marked.
 */
export const markNeedsReauth = internalMutation({
  args: { connectionId: v.id("connections"), version: v.number(), leaseId: v.string() },
  returns: v.union(
    v.object({ kind: v.literal("marked"), error: v.string() }),
    v.object({ kind: v.union(v.literal("changed"), v.literal("lease_lost"), v.literal("gone")) }),
  ),
  handler: async (ctx, { connectionId, version, leaseId }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) return { kind: "gone" as const };
    if ((connection.secretVersion ?? 0) !== version) return { kind: "changed" as const };
    if (connection.refreshLease?.leaseId !== leaseId) return { kind: "lease_lost" as const };
    const integration = findIntegration(connection.service);
    const error = new ProviderError(integration?.name ?? connection.service, "invalid_grant").message;
    // Never due again until an admin reconnects (writeGrant "connected").
    await ctx.db.patch("connections", connectionId, {
      status: "needs_reauth",
      lastError: error,
      refreshLease: undefined,
      nextSyncAt: NOT_SCHEDULED,
    });
    await recordAudit(ctx, {
      action: "connection.needs_reauth",
      projectId: connection.projectId,
      targetTable: "connections",
      targetId: connectionId,
      detail: "invalid_grant",
    });
    // Operators watch `npx convex logs`: ids and codes only.
    console.warn(`connection ${connectionId} needs reauthorization: invalid_grant`);
    return { kind: "marked" as const, error };
  },
});

// ---------------------------------------------------------------------------
// Fresh access tokens for the sync

/** What oauthAccess found. */
export type OAuthAccess =
  /** `credentials` (settings + accessToken) are good for at least REFRESH_MARGIN_MS; stored as `secretVersion`. */
  | { kind: "ready"; credentials: Credentials; secretVersion: number }
  /** The grant is dead (invalid_grant); the connection is marked needs_reauth with `error` as lastError. */
  | { kind: "needs_reauth"; error: string }
  /** The refresh failed for another reason (provider down, timeout, client not configured). */
  | { kind: "failed"; error: ProviderError }
  /** The connection was removed meanwhile. */
  | { kind: "gone" };

/** What the sync already has when it asks for an access token. */
export interface OAuthAccessInput {
  connectionId: Id<"connections">;
  projectId: Id<"projects">;
  integration: Integration;
  keyring: Keyring;
  /** The secretVersion the credentials were read at. */
  secretVersion: number;
  /** The connection's decrypted credentials (settings and tokens). */
  credentials: Credentials;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A fresh access token for one connection, refreshing it if it expires
 * within REFRESH_MARGIN_MS. Of all the syncs that find the same version
 * expiring, one claims the refresh lease (claimRefresh) and calls the token
 * endpoint; the others poll every REFRESH_POLL_MS (for up to
 * REFRESH_WAIT_MS) until the version changes and then use the winner's
 * tokens, or claim the lease themselves if the winner gave up. The winner
 * writes the new access token and the (possibly rotated) refresh token as
 * one ciphertext, version + 1, in one mutation that succeeds only if the
 * version is still the one it refreshed.
 */
export async function oauthAccess(ctx: ActionCtx, input: OAuthAccessInput): Promise<OAuthAccess> {
  const { connectionId, projectId, integration, keyring } = input;
  const oauth = integration.oauth;
  if (!oauth) return { kind: "failed", error: new ProviderError(integration.name, "invalid_request") };
  let version = input.secretVersion;
  let grant = credentialsToGrant(input.credentials);
  const deadline = Date.now() + REFRESH_WAIT_MS;

  /** Reads the row again after it changed; false when there is nothing to use. */
  const reload = async (): Promise<OAuthAccess | null> => {
    const row = await ctx.runQuery(internal.oauth.loadGrant, { connectionId });
    if (!row) return { kind: "gone" };
    if (row.status === "needs_reauth") {
      return { kind: "needs_reauth", error: new ProviderError(integration.name, "invalid_grant").message };
    }
    if (row.secretVersion !== version && row.encryptedCredentials !== null) {
      grant = await openGrant(keyring, projectId, connectionId, row.secretVersion, row.encryptedCredentials);
      version = row.secretVersion;
    }
    return null;
  };

  for (;;) {
    if (grant.accessTokenExpiresAt - Date.now() > REFRESH_MARGIN_MS) {
      return { kind: "ready", credentials: fetchCredentials(grant), secretVersion: version };
    }
    const claim = await ctx.runMutation(internal.oauth.claimRefresh, { connectionId, version });
    if (claim.kind === "gone") return { kind: "gone" };
    if (claim.kind === "needs_reauth") {
      return { kind: "needs_reauth", error: new ProviderError(integration.name, "invalid_grant").message };
    }
    if (claim.kind === "busy" || claim.kind === "changed") {
      if (claim.kind === "busy") {
        if (Date.now() >= deadline) return { kind: "failed", error: new ProviderError(integration.name, "timeout") };
        await sleep(REFRESH_POLL_MS);
      }
      const stop = await reload();
      if (stop) return stop;
      continue;
    }

    let tokens: TokenSet;
    try {
      tokens = await refreshTokens(integration, oauth, grant.refreshToken);
    } catch (error) {
      if (isProviderError(error) && error.kind === "invalid_grant") {
        const marked = await ctx.runMutation(internal.oauth.markNeedsReauth, { connectionId, version, leaseId: claim.leaseId });
        if (marked.kind === "marked") return { kind: "needs_reauth", error: marked.error };
        if (marked.kind === "gone") return { kind: "gone" };
        // The refused token was outdated (another write replaced it) or another refresher took over.
        const stop = await reload();
        if (stop) return stop;
        continue;
      }
      await ctx.runMutation(internal.oauth.releaseRefresh, { connectionId, leaseId: claim.leaseId });
      if (isProviderError(error)) return { kind: "failed", error };
      throw error;
    }

    const refreshed: StoredGrant = {
      settings: grant.settings,
      accessToken: tokens.accessToken,
      // A provider that rotates refresh tokens sends the new one; the old one may already be dead.
      refreshToken: tokens.refreshToken ?? grant.refreshToken,
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
    };
    const written = await ctx.runMutation(internal.oauth.writeGrant, {
      connectionId,
      expectedVersion: version,
      encryptedCredentials: await sealGrant(keyring, projectId, connectionId, version + 1, refreshed),
      event: { kind: "refreshed", leaseId: claim.leaseId, refreshTokenRotated: tokens.refreshToken !== undefined },
    });
    if (written === "written") {
      return { kind: "ready", credentials: fetchCredentials(refreshed), secretVersion: version + 1 };
    }
    if (written === "gone") return { kind: "gone" };
    // Someone else wrote the tokens (a reconnect) or holds the lease now: theirs win.
    const stop = await reload();
    if (stop) return stop;
  }
}

// ---------------------------------------------------------------------------
// The callback, then the signed-in user finishes the flow

/** A state or completion token: 32 random bytes in base64url without padding. */
const FLOW_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Why the callback sent the browser back without a flow to finish; the dashboard gets only this code. */
type CallbackFailure = "invalid_state" | "expired" | "denied" | "authorization_failed" | "not_configured" | "internal";

const CALLBACK_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" };

/**
 * A redirect to DASHBOARD_URL carrying `oauth` (received / error) and the
 * flow's completion token or a failure code: never a token, the code or the
 * state. The Referrer-Policy keeps the callback URL (with the code) out of
 * the dashboard's Referer.
 */
function dashboardRedirect(params: Record<string, string>): Response {
  let target: URL | null;
  try {
    target = new URL(env.DASHBOARD_URL?.trim() ?? "");
  } catch {
    target = null;
  }
  if (!target) {
    return new Response("Dashtray: DASHBOARD_URL is not configured on this deployment", {
      status: 500,
      headers: { ...CALLBACK_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
    });
  }
  for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
  return new Response(null, { status: 302, headers: { ...CALLBACK_HEADERS, Location: target.toString() } });
}

function failed(reason: CallbackFailure): Response {
  return dashboardRedirect({ oauth: "error", reason });
}

/** 429 with Retry-After (whole seconds, at least 1) for a source that sent too many unknown states. */
function callbackThrottled(until: number, now: number): Response {
  return new Response("Too many failed sign-ins from this address; try again later", {
    status: 429,
    headers: {
      ...CALLBACK_HEADERS,
      "Content-Type": "text/plain; charset=utf-8",
      "Retry-After": String(Math.max(1, Math.ceil((until - now) / 1000))),
    },
  });
}

/**
 * GET /oauth/callback?code&state (or ?error&state), from the browser the
 * provider sent back. It exchanges nothing: this request carries no
 * Dashtray sign-in, so whoever's browser it is, the grant must not land in
 * a project on the strength of the state alone (anyone who started a flow
 * knows its state and could send its authorization URL to someone else).
 * It encrypts the code onto the flow (receiveCallback) and sends the
 * browser to DASHBOARD_URL with ?oauth=received&flow=<completion token>;
 * the dashboard then calls connections.finishOAuth as the signed-in user.
 * Failures: ?oauth=error&reason=…. A state that is not 43 base64url
 * characters is refused before any function call; a well-formed unknown
 * one counts against the source (`source`, see http.ts requestSource),
 * which gets 429 once its bucket is empty. A known state is never throttled.
 */
export async function handleOAuthCallback(ctx: ActionCtx, request: Request, source: string): Promise<Response> {
  const url = new URL(request.url);
  const state = url.searchParams.get("state") ?? "";
  if (!FLOW_TOKEN_PATTERN.test(state)) return failed("invalid_state");
  const stateHash = await sha256Hex(state);
  // The state is checked first: a known state is never throttled, so no one can get another's callback refused
  // by failing from the address it claims (the source comes from a header clients can set).
  const { flow } = await ctx.runQuery(internal.oauth.lookupCallback, { stateHash });
  if (!flow) {
    const throttledUntil = await ctx.runMutation(internal.oauth.recordCallbackFailure, { source });
    return throttledUntil === null ? failed("invalid_state") : callbackThrottled(throttledUntil, Date.now());
  }
  if (flow.expired) {
    await ctx.runMutation(internal.oauth.receiveCallback, { stateHash, outcome: { kind: "refused" } });
    return failed("expired");
  }
  const code = url.searchParams.get("code");
  const providerError = url.searchParams.get("error");
  if (providerError || !code || code.length > MAX_CALLBACK_PARAM_LENGTH) {
    await ctx.runMutation(internal.oauth.receiveCallback, { stateHash, outcome: { kind: "refused" } });
    return failed(providerError === "access_denied" ? "denied" : "authorization_failed");
  }
  try {
    const keyring = loadKeyring(flow.rootSalt);
    const completionToken = randomToken(32);
    const received = await ctx.runMutation(internal.oauth.receiveCallback, {
      stateHash,
      outcome: {
        kind: "code",
        stateId: flow.stateId,
        encryptedCode: await encryptAuthorizationCode(keyring, flow.projectId, flow.stateId, code),
        completionHash: await sha256Hex(completionToken),
      },
    });
    if (received === "received") return dashboardRedirect({ oauth: "received", flow: completionToken });
    return failed(received === "expired" ? "expired" : "invalid_state");
  } catch (error) {
    const errorCode = appErrorCode(error);
    console.warn(`OAuth callback for project ${flow.projectId} failed: ${errorCode ?? "internal"}`);
    return failed(errorCode === "ENCRYPTION_UNAVAILABLE" ? "not_configured" : "internal");
  }
}

/**
 * Finishes a flow for the signed-in caller (connections.finishOAuth):
 * takes the flow named by the completion token the callback put in the
 * dashboard URL (single use; only its starter, still an admin, may finish
 * it), exchanges the code with the PKCE verifier, and stores the tokens
 * encrypted in a new connection (or the one being reconnected) at
 * secretVersion + 1. Returns the connection id. Errors: NOT_FOUND (unknown,
 * used or expired flow), FORBIDDEN (another user, or no longer an admin),
 * PROVIDER_ERROR (the exchange failed), CONFLICT (the project is full).
 */
export async function finishFlow(ctx: ActionCtx, tokenIdentifier: string, completionToken: string): Promise<Id<"connections">> {
  if (!FLOW_TOKEN_PATTERN.test(completionToken)) throw appError("NOT_FOUND", "This sign-in was not found or is already finished");
  const flow = await ctx.runMutation(internal.oauth.takeReceivedFlow, {
    completionHash: await sha256Hex(completionToken),
    tokenIdentifier,
  });
  if (flow.kind === "unknown") throw appError("NOT_FOUND", "This sign-in was not found or is already finished");
  if (flow.kind === "expired") throw appError("NOT_FOUND", "This sign-in expired; connect the account again");
  if (flow.kind === "forbidden") throw appError("FORBIDDEN", "Only the admin who started this sign-in can finish it");
  const integration = oauthIntegration(flow.service);
  if (!integration) throw appError("NOT_FOUND", "This sign-in was not found or is already finished");

  // The grant obtained by the exchange until it is stored: revoked at the provider if the flow fails after the exchange.
  let unstoredGrant: string | undefined;
  try {
    const keyring = loadKeyring(flow.rootSalt);
    const codeVerifier = await decryptCodeVerifier(keyring, flow.projectId, flow.stateId, flow.encryptedCodeVerifier);
    const code = await decryptAuthorizationCode(keyring, flow.projectId, flow.stateId, flow.encryptedCode);
    const tokens = await exchangeCode(integration, integration.oauth, { code, codeVerifier, redirectUri: oauthRedirectUri() });
    unstoredGrant = tokens.refreshToken ?? tokens.accessToken;
    // Without a refresh token the connection would die within the hour.
    if (!tokens.refreshToken) throw new ProviderError(integration.name, "bad_response");
    const grant: StoredGrant = {
      settings: flow.settings,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
    };
    const hints = credentialHints(integration.id, flow.settings);

    let connectionId = flow.connectionId;
    if (connectionId === null) {
      connectionId = await ctx.runMutation(internal.connections.insertOAuthConnection, {
        projectId: flow.projectId,
        userId: flow.userId,
        service: integration.id,
        name: flow.name,
        credentialHints: hints,
      });
      if (connectionId === null) throw appError("CONFLICT", "The project cannot take another connection: remove one first");
    }
    // A reconnect races only with refreshes of the old grant: retry on a changed version.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await ctx.runQuery(internal.oauth.loadGrant, { connectionId });
      if (!row || row.projectId !== flow.projectId) throw appError("NOT_FOUND", "Connection not found");
      const written = await ctx.runMutation(internal.oauth.writeGrant, {
        connectionId,
        expectedVersion: row.secretVersion,
        encryptedCredentials: await sealGrant(keyring, flow.projectId, connectionId, row.secretVersion + 1, grant),
        event: { kind: "connected", actorId: flow.userId, credentialHints: hints },
      });
      if (written === "written") {
        unstoredGrant = undefined;
        return connectionId;
      }
      if (written === "gone") throw appError("NOT_FOUND", "Connection not found");
    }
    throw appError("CONFLICT", "The connection kept changing while its tokens were stored; connect again");
  } catch (error) {
    // Ids and codes only: the error may be about a request that carried the code.
    console.warn(
      `OAuth finish for project ${flow.projectId} failed: ${isProviderError(error) ? `provider_error:${error.kind}` : (appErrorCode(error) ?? "internal")}`,
    );
    if (unstoredGrant !== undefined) {
      // Exchanged but not stored (project full, cap reached, connection removed...): nothing will ever use this
      // grant, so it is revoked now, best effort, from this action (which holds it; nothing is stored for it).
      try {
        await revokeToken(integration, integration.oauth, unstoredGrant);
        console.warn(`OAuth finish for project ${flow.projectId}: the unused grant was revoked`);
      } catch (revokeError) {
        console.warn(
          `OAuth finish for project ${flow.projectId}: revoking the unused grant failed: ${isProviderError(revokeError) ? `provider_error:${revokeError.kind}` : "internal"}`,
        );
      }
    }
    throw isProviderError(error) ? providerAppError(error) : error;
  }
}

// ---------------------------------------------------------------------------
// Revocation on disconnect

/**
 * Queues the revocation of a removed OAuth connection's grant (called by
 * connections.remove in the mutation that deletes the row). Mutations
 * cannot call the provider and must not see plaintext, so the row's
 * ciphertext moves to oauthRevocations, still bound to the connection's
 * salt and purpose, and an action decrypts it, revokes, and deletes it. It
 * is passed by id, not as an argument: a scheduled function's arguments
 * stay in _scheduled_functions after it ran, a table row is gone when
 * deleted. A backstop deletes the row even if the action never finishes.
 */
export async function queueRevocation(ctx: MutationCtx, connection: Doc<"connections">): Promise<void> {
  if (!oauthIntegration(connection.service) || !connection.encryptedCredentials) return;
  const revocationId = await ctx.db.insert("oauthRevocations", {
    projectId: connection.projectId,
    connectionId: connection._id,
    service: connection.service,
    secretVersion: connection.secretVersion ?? 0,
    encryptedCredentials: connection.encryptedCredentials,
    createdAt: Date.now(),
  });
  await ctx.scheduler.runAfter(0, internal.oauth.revokeGrant, { revocationId });
  await ctx.scheduler.runAfter(REVOCATION_BACKSTOP_MS, internal.oauth.finishRevocation, { revocationId, outcome: null });
}

/** A queued revocation (internal: ciphertext), or null once finished. */
export const loadRevocation = internalQuery({
  args: { revocationId: v.id("oauthRevocations") },
  returns: v.union(
    v.object({
      projectId: v.id("projects"),
      connectionId: v.id("connections"),
      service: v.string(),
      secretVersion: v.number(),
      encryptedCredentials: v.string(),
      rootSalt: v.union(v.string(), v.null()),
    }),
    v.null(),
  ),
  handler: async (ctx, { revocationId }) => {
    const row = await ctx.db.get("oauthRevocations", revocationId);
    if (!row) return null;
    const { projectId, connectionId, service, secretVersion, encryptedCredentials } = row;
    return { projectId, connectionId, service, secretVersion, encryptedCredentials, rootSalt: await readRootSalt(ctx.db) };
  },
});

/**
 * Deletes a queued revocation and records how it went (`outcome`: "revoked"
 * or a failure code; null from the backstop, which records only if the row
 * was still there).
 */
export const finishRevocation = internalMutation({
  args: { revocationId: v.id("oauthRevocations"), outcome: v.union(v.string(), v.null()) },
  returns: v.null(),
  handler: async (ctx, { revocationId, outcome }) => {
    const row = await ctx.db.get("oauthRevocations", revocationId);
    if (!row) return null;
    await ctx.db.delete("oauthRevocations", revocationId);
    await recordAudit(ctx, {
      action: "connection.tokens_revoked",
      // A removed project's revocations go to the remover's own log, not under its id.
      ...(await projectAuditScope(ctx, row.projectId)),
      targetTable: "connections",
      targetId: row.connectionId,
      detail: outcome ?? "not attempted: the revocation did not run in time",
    });
    return null;
  },
});

/** Revokes a removed connection's grant at the provider (best effort), then deletes its ciphertext. */
export const revokeGrant = internalAction({
  args: { revocationId: v.id("oauthRevocations") },
  returns: v.null(),
  handler: async (ctx, { revocationId }) => {
    const row = await ctx.runQuery(internal.oauth.loadRevocation, { revocationId });
    if (!row) return null;
    let outcome = "revoked";
    try {
      const integration = oauthIntegration(row.service);
      if (!integration) throw new ProviderError(row.service, "invalid_request");
      const keyring = loadKeyring(row.rootSalt);
      const grant = await openGrant(keyring, row.projectId, row.connectionId, row.secretVersion, row.encryptedCredentials);
      await revokeToken(integration, integration.oauth, grant.refreshToken);
    } catch (error) {
      if (isProviderError(error)) outcome = `failed: provider_error:${error.kind}`;
      else if (appErrorCode(error)) outcome = `failed: ${appErrorCode(error)}`;
      else outcome = "failed: internal";
      console.warn(`revocation for removed connection ${row.connectionId} ${outcome}`);
    } finally {
      await ctx.runMutation(internal.oauth.finishRevocation, { revocationId, outcome });
    }
    return null;
  },
});
