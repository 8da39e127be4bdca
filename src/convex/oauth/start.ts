/**
 * OAuth 2.0 connections, the first stage (docs/integrations.md, "OAuth
 * integrations"): start.ts records a flow and sends the user to the
 * provider; callback.ts takes the provider's redirect; finish.ts exchanges
 * the code for the signed-in user; refresh.ts (with tokenStore.ts) keeps the
 * access token fresh for the sync; revocation.ts ends a grant that is no
 * longer used. grants.ts is how a grant is stored.
 *
 * Plaintext tokens, codes and verifiers exist only in local variables of one
 * action: never in a function argument, a return value, a log line or an
 * error. Mutations receive and store ciphertext only.
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Doc, Id } from "../_generated/dataModel";
import { internalMutation, type MutationCtx } from "../_generated/server";
import { appError, providerAppError } from "../errors";
import { cleanName } from "../access/input";
import { codeChallengeS256, newCodeVerifier } from "../lib/pkce";
import { randomToken, sha256Hex } from "../lib/hash";
import { isProviderError } from "../providers/errors";
import { authorizationUrl, oauthClient } from "../providers/integrations/oauthClient";
import { validateOAuthSettings } from "../providers/integrations/registry";
import { encryptCodeVerifier, loadKeyringForWrite } from "../storedSecrets/encryption";
import type { Credentials } from "../validators";
import { oauthRedirectUri } from "./provider";
import { rateLimited } from "../access/rateLimits";

/** How long an authorization flow may take, from startOAuth to the callback. */
export const OAUTH_STATE_TTL_MS = 10 * 60_000;
/** Most unfinished flows a project may have at once (each costs a row and a scheduled deletion). */
export const MAX_PENDING_OAUTH_FLOWS = 20;
/** A state or completion token: 32 random bytes in base64url without padding. */
export const FLOW_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

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
    // A count cap, not a rate, but one that frees itself when the oldest flow expires, with nothing for the
    // user to remove: so RATE_LIMITED with that time (the dashboard waits until retryAt), not LIMIT_REACHED.
    throw rateLimited(retryAt, "Too many sign-ins are in progress for this project");
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
  await ctx.scheduler.runAfter(OAUTH_STATE_TTL_MS, internal.oauth.start.deleteExpiredFlow, { stateId });
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
