/**
 * A connection's stored grant, written by compare-and-swap on its
 * secretVersion (finish.ts and refresh.ts write through here), and the
 * refresh lease that lets one sync refresh a version while the others wait.
 */
import { v } from "convex/values";
import { internalMutation, internalQuery } from "../_generated/server";
import { recordAudit } from "../audit/trail";
import { randomToken } from "../lib/hash";
import { ProviderError } from "../providers/errors";
import { findIntegration } from "../providers/integrations/registry";
import { providerTimeoutMs } from "../providers/transport";
import { NOT_SCHEDULED } from "../sync/policy";
import { queueRevocation } from "./revocation";

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
      v.object({
        kind: v.literal("connected"),
        actorId: v.id("users"),
        credentialHints: v.record(v.string(), v.string()),
        /** The new grant's account (oauth/accounts.ts); absent when the provider named none. */
        oauthAccountHash: v.optional(v.string()),
      }),
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
      const previous = connection.oauthAccountHash;
      if (previous !== undefined && event.oauthAccountHash !== undefined && previous !== event.oauthAccountHash) {
        // Reconnected with another account: the previous account's grant is no longer used here, so it is revoked
        // (unless another connection holds that account: revokeGrant checks when it runs). With the same account,
        // or when either account is unknown, nothing is revoked: at Google the old and the new tokens are one
        // authorization, and revoking the old would end the new one too.
        await queueRevocation(ctx, connection);
      }
      await ctx.db.patch("connections", connectionId, {
        ...secret,
        oauthAccountHash: event.oauthAccountHash,
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
    v.object({ kind: v.union(v.literal("changed"), v.literal("lease_lost"), v.literal("gone"), v.literal("paused")) }),
  ),
  handler: async (ctx, { connectionId, version, leaseId }) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) return { kind: "gone" as const };
    if ((connection.secretVersion ?? 0) !== version) return { kind: "changed" as const };
    if (connection.refreshLease?.leaseId !== leaseId) return { kind: "lease_lost" as const };
    if (connection.status === "inactive") {
      // Paused while this sync refreshed: it stays paused (status, schedule and lastError untouched), and only the
      // lease goes. Resuming makes it due; that sync's refresh gets invalid_grant again and marks it then.
      await ctx.db.patch("connections", connectionId, { refreshLease: undefined });
      return { kind: "paused" as const };
    }
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
