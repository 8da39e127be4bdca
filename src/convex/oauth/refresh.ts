/**
 * OAuth stage 4: a fresh access token for each sync (start.ts has the
 * overview). One sync refreshes an expiring grant under a lease
 * (tokenStore.ts); the others wait for its tokens.
 */
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import type { ActionCtx } from "../_generated/server";
import type { Keyring } from "../lib/keyring";
import { ProviderError, isProviderError } from "../providers/errors";
import { refreshTokens, type TokenSet } from "../providers/integrations/oauthClient";
import type { Integration } from "../providers/integrations/types";
import type { Credentials } from "../validators";
import { credentialsToGrant, fetchCredentials, openGrant, sealGrant, type StoredGrant } from "./grants";

/** An access token expiring within this margin is refreshed before use. */
export const REFRESH_MARGIN_MS = 5 * 60_000;
/** How long a sync waits for another sync's refresh before giving up. */
export const REFRESH_WAIT_MS = 20_000;
/** How often a waiting sync looks for the winner's tokens. */
export const REFRESH_POLL_MS = 200;

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
    const row = await ctx.runQuery(internal.oauth.tokenStore.loadGrant, { connectionId });
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
    const claim = await ctx.runMutation(internal.oauth.tokenStore.claimRefresh, { connectionId, version });
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
        const marked = await ctx.runMutation(internal.oauth.tokenStore.markNeedsReauth, { connectionId, version, leaseId: claim.leaseId });
        if (marked.kind === "marked") return { kind: "needs_reauth", error: marked.error };
        if (marked.kind === "gone") return { kind: "gone" };
        // Paused meanwhile: nothing was marked; the sync stores nothing for a paused connection.
        if (marked.kind === "paused") return { kind: "failed", error };
        // The refused token was outdated (another write replaced it) or another refresher took over.
        const stop = await reload();
        if (stop) return stop;
        continue;
      }
      await ctx.runMutation(internal.oauth.tokenStore.releaseRefresh, { connectionId, leaseId: claim.leaseId });
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
    const written = await ctx.runMutation(internal.oauth.tokenStore.writeGrant, {
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
