/**
 * OAuth stage 3: the signed-in user who started a flow finishes it
 * (connections.finishOAuth): the code is exchanged and the grant stored
 * (start.ts has the overview).
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import { internalMutation, type ActionCtx } from "../_generated/server";
import { findProjectRole } from "../access/roles";
import { appError, appErrorCode, providerAppError } from "../errors";
import { sha256Hex } from "../lib/hash";
import { ProviderError, isProviderError } from "../providers/errors";
import { exchangeCode, revokeToken } from "../providers/integrations/oauthClient";
import { credentialHints } from "../providers/integrations/registry";
import { decryptAuthorizationCode, decryptCodeVerifier, loadKeyring, oauthAccountHash, readRootSalt } from "../storedSecrets/encryption";
import { sealGrant, type StoredGrant } from "./grants";
import { oauthIntegration, oauthRedirectUri } from "./provider";
import { FLOW_TOKEN_PATTERN } from "./start";
import { findUserByToken } from "../access/identity";

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
    const caller = await findUserByToken(ctx, tokenIdentifier);
    if (caller?._id !== flow.userId) return { kind: "forbidden" as const };
    if (!(await findProjectRole(ctx, flow.userId, flow.projectId, "admin"))) return { kind: "forbidden" as const };
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
  const flow = await ctx.runMutation(internal.oauth.finish.takeReceivedFlow, {
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
  // Its account (oauth/accounts.ts): another connection of the same account holds the same authorization at Google.
  let accountHash: string | undefined;
  try {
    const keyring = loadKeyring(flow.rootSalt);
    const codeVerifier = await decryptCodeVerifier(keyring, flow.projectId, flow.stateId, flow.encryptedCodeVerifier);
    const code = await decryptAuthorizationCode(keyring, flow.projectId, flow.stateId, flow.encryptedCode);
    const tokens = await exchangeCode(integration, integration.oauth, { code, codeVerifier, redirectUri: oauthRedirectUri() });
    unstoredGrant = tokens.refreshToken ?? tokens.accessToken;
    if (tokens.accountId !== undefined) {
      accountHash = (await oauthAccountHash(flow.rootSalt, integration.id, tokens.accountId)) ?? undefined;
    }
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
      // Throws NOT_FOUND (project removed during the exchange), FORBIDDEN, CONFLICT (project full), LIMIT_REACHED.
      connectionId = await ctx.runMutation(internal.connections.insertOAuthConnection, {
        projectId: flow.projectId,
        userId: flow.userId,
        service: integration.id,
        name: flow.name,
        credentialHints: hints,
      });
    }
    // A reconnect races only with refreshes of the old grant: retry on a changed version.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await ctx.runQuery(internal.oauth.tokenStore.loadGrant, { connectionId });
      if (!row || row.projectId !== flow.projectId) throw appError("NOT_FOUND", "Connection not found");
      const written = await ctx.runMutation(internal.oauth.tokenStore.writeGrant, {
        connectionId,
        expectedVersion: row.secretVersion,
        encryptedCredentials: await sealGrant(keyring, flow.projectId, connectionId, row.secretVersion + 1, grant),
        event: { kind: "connected", actorId: flow.userId, credentialHints: hints, oauthAccountHash: accountHash },
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
      // Exchanged but not stored (project removed or full, cap reached, connection removed...): nothing will ever
      // use this grant, so it is revoked now, best effort, from this action (which holds it; nothing is stored for
      // it), unless a connection may hold the same account's grant, which revoking would end too.
      try {
        if (await ctx.runQuery(internal.oauth.revocation.accountInUse, { service: integration.id, oauthAccountHash: accountHash })) {
          console.warn(`OAuth finish for project ${flow.projectId}: the unused grant was kept (its account may be in use)`);
        } else {
          await revokeToken(integration, integration.oauth, unstoredGrant);
          console.warn(`OAuth finish for project ${flow.projectId}: the unused grant was revoked`);
        }
      } catch (revokeError) {
        console.warn(
          `OAuth finish for project ${flow.projectId}: revoking the unused grant failed: ${isProviderError(revokeError) ? `provider_error:${revokeError.kind}` : "internal"}`,
        );
      }
    }
    throw isProviderError(error) ? providerAppError(error) : error;
  }
}
