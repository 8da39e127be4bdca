/**
 * Ending a grant nobody uses any more (connections.remove, project
 * removal): the ciphertext is queued and an action revokes it at the
 * provider, best effort (start.ts has the overview).
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Doc } from "../_generated/dataModel";
import { internalAction, internalMutation, internalQuery, type MutationCtx } from "../_generated/server";
import { projectAuditScope, recordAudit } from "../audit/trail";
import { appErrorCode } from "../errors";
import { ProviderError, isProviderError } from "../providers/errors";
import { revokeToken } from "../providers/integrations/oauthClient";
import { providerTimeoutMs } from "../providers/transport";
import { loadKeyring, readRootSalt } from "../storedSecrets/encryption";
import { accountMayBeHeld } from "./accounts";
import { openGrant } from "./grants";
import { oauthIntegration } from "./provider";

/** When a queued revocation is deleted even if its action never ran (after it was due). */
export const REVOCATION_BACKSTOP_MS = 15 * 60_000;

/**
 * How long a queued revocation waits before it runs: longer than a
 * finishOAuth takes from its code exchange (one provider request) to
 * inserting its connection row, so a sign-in of the same account that is
 * exchanging its code right now is visible (oauth/accounts.ts) when the
 * revocation decides.
 */
export function revocationDelayMs(): number {
  return 2 * providerTimeoutMs() + 60_000;
}

/**
 * Queues the revocation of a connection's grant (called in the mutation
 * that removes the row: connections.remove, a project's removal; and by
 * writeGrant when a reconnect replaced the grant with another account's).
 * Whether it may be revoked (no other grant of the same account:
 * oauth/accounts.ts) is decided when the action runs, so a connection made
 * meanwhile with the same account keeps its grant. Mutations
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
    oauthAccountHash: connection.oauthAccountHash,
    createdAt: Date.now(),
  });
  const delay = revocationDelayMs();
  await ctx.scheduler.runAfter(delay, internal.oauth.revocation.revokeGrant, { revocationId });
  await ctx.scheduler.runAfter(delay + REVOCATION_BACKSTOP_MS, internal.oauth.revocation.finishRevocation, { revocationId, outcome: null });
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
      /** Whether another connection may hold a grant of the same account (oauth/accounts.ts): then it is kept. */
      accountInUse: v.boolean(),
    }),
    v.null(),
  ),
  handler: async (ctx, { revocationId }) => {
    const row = await ctx.db.get("oauthRevocations", revocationId);
    if (!row) return null;
    const { projectId, connectionId, service, secretVersion, encryptedCredentials } = row;
    // The connection itself counts too: a removed row is gone, a row reconnected with another account carries
    // that account's hash, and one switched back to this account meanwhile holds this grant's authorization again.
    const accountInUse = await accountMayBeHeld(ctx.db, service, row.oauthAccountHash, null);
    return { projectId, connectionId, service, secretVersion, encryptedCredentials, rootSalt: await readRootSalt(ctx.db), accountInUse };
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

/**
 * Whether a connection (but `exceptId`: the failed sign-in's own row) holds a grant that may be of the
 * account `oauthAccountHash` (absent: unknown) of `service`.
 */
export const accountInUse = internalQuery({
  args: { service: v.string(), oauthAccountHash: v.optional(v.string()), exceptId: v.optional(v.id("connections")) },
  returns: v.boolean(),
  handler: (ctx, { service, oauthAccountHash, exceptId }) => accountMayBeHeld(ctx.db, service, oauthAccountHash, exceptId ?? null),
});

/**
 * Revokes a grant nobody uses any more at the provider (best effort), then
 * deletes its ciphertext; a grant whose account another connection may
 * hold is not revoked (the audit entry says so).
 */
export const revokeGrant = internalAction({
  args: { revocationId: v.id("oauthRevocations") },
  returns: v.null(),
  handler: async (ctx, { revocationId }) => {
    const row = await ctx.runQuery(internal.oauth.revocation.loadRevocation, { revocationId });
    if (!row) return null;
    if (row.accountInUse) {
      await ctx.runMutation(internal.oauth.revocation.finishRevocation, {
        revocationId,
        outcome: "not revoked: another connection may hold a grant of the same account",
      });
      return null;
    }
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
      console.warn(`revocation of a grant of connection ${row.connectionId} ${outcome}`);
    } finally {
      await ctx.runMutation(internal.oauth.revocation.finishRevocation, { revocationId, outcome });
    }
    return null;
  },
});
