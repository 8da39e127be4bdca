// Google Analytics 4 over OAuth 2.0 against the loopback fake Google. Fresh access tokens for the sync: refresh with rotation, races under the lease, invalid_grant -> needs_reauth, other failures, a huge token answer.
// Tokens, codes, the PKCE verifier and the client secret must never appear in a return value, URL, log,
// error or stored non-ciphertext field (the console is checked after every test by useFakeProviders).
import { expect, test, vi } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import { errorOf, everythingStored, projectWithEveryRole } from "../helpers/api";
import { newBackend } from "../helpers/convex";
import { expectNoSecrets, useFakeProviders } from "../helpers/secrets";
import { HUGE_BODY_BYTES } from "../helpers/fakeProviders";
import { PAUSED_NEXT_SYNC_AT } from "../../convex/sync/pause";
import { SERVICE, SETTINGS, oauthSteps } from "../helpers/oauthFlow";

const fake = useFakeProviders();
const { issued, tokenRequests, connect, finish, connected, row, auditActions, storedRefreshToken, syncOnce } = oauthSteps(fake);

test("an access token expiring within the margin is refreshed; a rotated refresh token replaces the stored one", async () => {
  const t = newBackend();
  const { projectId, admin, member } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60; // inside the 5-minute margin
  const connectionId = await connected(t, admin, projectId);
  const firstRefreshToken = await storedRefreshToken(t, connectionId);

  const result = await member.action(api.connections.syncMetrics, {
    connectionId,
  });

  expect(result).toEqual({ status: "active", metricsStored: 3 });
  const refreshes = tokenRequests("refresh_token");
  expect(refreshes).toHaveLength(1);
  expect(new URLSearchParams(refreshes[0]!.body).get("refresh_token")).toBe(firstRefreshToken);
  const secondRefreshToken = await storedRefreshToken(t, connectionId);
  expect(secondRefreshToken).not.toBe(firstRefreshToken);
  expect(fake().oauth.liveRefreshTokens.has(secondRefreshToken!)).toBe(true);
  expect(fake().oauth.liveRefreshTokens.has(firstRefreshToken!)).toBe(false);
  expect((await row(t, connectionId))?.secretVersion).toBe(2);
  expect((await row(t, connectionId))?.refreshLease).toBeUndefined();
  expect(await auditActions(t, connectionId)).toContain("connection.tokens_refreshed");

  // The next refresh spends the rotated token (the fake refuses the old one).
  const again = await syncOnce(t, connectionId);
  expect(again).toEqual({ status: "active", metricsStored: 3 });
  expect(tokenRequests("refresh_token").map((request) => new URLSearchParams(request.body).get("refresh_token"))).toEqual([
    firstRefreshToken,
    secondRefreshToken,
  ]);
  expect((await row(t, connectionId))?.secretVersion).toBe(3);
  expectNoSecrets([result, again, await everythingStored(t)], issued());
});

test("two syncs racing on an expired token: exactly one refresh reaches the provider and both syncs succeed with its token", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  fake().oauth.accessTokenLifetimeSeconds = 3600;
  // The token endpoint takes a while, so the second sync finds the lease taken and waits for the winner.
  fake().oauth.refreshDelayMs = 400;

  const results = await Promise.all([syncOnce(t, connectionId), syncOnce(t, connectionId)]);

  expect(results).toEqual([
    { status: "active", metricsStored: 3 },
    { status: "active", metricsStored: 3 },
  ]);
  expect(tokenRequests("refresh_token")).toHaveLength(1);
  const reports = fake().requests.filter((request) => request.route === "ga4.runReport");
  expect(reports).toHaveLength(2);
  expect(new Set(reports.map((request) => request.headers.authorization)).size).toBe(1);
  expect((await row(t, connectionId))?.secretVersion).toBe(2);
  expect(fake().oauth.liveRefreshTokens.size).toBe(1);
  expect(await storedRefreshToken(t, connectionId)).toBe([...fake().oauth.liveRefreshTokens][0]);
});

test("invalid_grant marks the connection needs_reauth with a safe message; reconnecting brings it back", async () => {
  const t = newBackend();
  const { projectId, admin, member } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  fake().oauth.revokeEverything(); // the user removed the app's access in their Google account

  const result = await member.action(api.connections.syncMetrics, {
    connectionId,
  });

  const message = "Google Analytics access was revoked or has expired; connect the account again";
  expect(result).toEqual({
    status: "needs_reauth",
    metricsStored: 0,
    error: message,
  });
  expect(await member.query(api.connections.get, { connectionId })).toMatchObject({ status: "needs_reauth", lastError: message });
  expect(await auditActions(t, connectionId)).toContain("connection.needs_reauth");
  expect((await row(t, connectionId))?.refreshLease).toBeUndefined();

  // No further calls to Google until an admin reconnects.
  const requestsBefore = fake().requests.length;
  expect(await syncOnce(t, connectionId)).toEqual({
    status: "needs_reauth",
    metricsStored: 0,
    error: message,
  });
  expect(fake().requests).toHaveLength(requestsBefore);

  fake().oauth.accessTokenLifetimeSeconds = 3600;
  const { response } = await connect(t, admin, projectId, { connectionId });
  expect(await finish(admin, response)).toBe(connectionId);
  expect(await member.query(api.connections.get, { connectionId })).toMatchObject({ status: "pending" });
  expect(await t.run((ctx) => ctx.db.query("connections").collect())).toHaveLength(1);
  expect(await syncOnce(t, connectionId)).toEqual({
    status: "active",
    metricsStored: 3,
  });
  expectNoSecrets([result, await everythingStored(t)], issued());
});

test("other refresh failures leave the grant alone: status error, lease released, next sync retries", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  fake().setMode("google.token", 503);

  const failed = await syncOnce(t, connectionId);
  expect(failed).toEqual({
    status: "error",
    metricsStored: 0,
    error: "Google Analytics is unavailable (HTTP 503)",
  });
  expect((await row(t, connectionId))?.refreshLease).toBeUndefined();
  expect((await row(t, connectionId))?.secretVersion).toBe(1);

  fake().setMode("google.token", "ok");
  expect(await syncOnce(t, connectionId)).toEqual({
    status: "active",
    metricsStored: 3,
  });
});

test("a GA4 error body echoing the access token and an unconfigured client never surface a secret", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const connectionId = await connected(t, admin, projectId);
  fake().setMode("ga4.runReport", 401); // the fake's body quotes the bearer token it got

  const result = await syncOnce(t, connectionId);
  expect(result).toEqual({
    status: "needs_reauth",
    metricsStored: 0,
    error: "Google Analytics rejected the credentials (HTTP 401); syncing is paused until the credentials are updated",
  });
  expectNoSecrets([result, await everythingStored(t)], issued());

  vi.stubEnv("GOOGLE_OAUTH_CLIENT_ID", "");
  const error = await errorOf(
    admin.mutation(api.connections.startOAuth, {
      projectId,
      service: SERVICE,
      settings: SETTINGS,
    }),
  );
  expect(error).toEqual({
    code: "PROVIDER_ERROR",
    message: "Google Analytics (GOOGLE_OAUTH_CLIENT_ID) is not configured on this deployment",
    service: "Google Analytics (GOOGLE_OAUTH_CLIENT_ID)",
    reason: "not_configured",
  });
});

test("a huge token endpoint answer is refused at the cap, without reading the rest", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  fake().setMode("google.token", "huge");

  expect(await syncOnce(t, connectionId)).toEqual({
    status: "error",
    metricsStored: 0,
    error: "Google Analytics sent an unexpected response (HTTP 200)",
  });
  // The fake writes only as fast as the client reads: a whole-body read would take all 30 MB.
  expect(fake().hugeBytesSent()).toBeLessThan(HUGE_BODY_BYTES / 3);
  expect((await row(t, connectionId))?.secretVersion).toBe(1);
});

test("only the current refresh lease may mark needs_reauth or write refreshed tokens; a refreshed write revives needs_reauth", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const connectionId = await connected(t, admin, projectId);
  const version = (await row(t, connectionId))!.secretVersion!;
  const sealed = (await row(t, connectionId))!.encryptedCredentials!;
  const refreshed = (leaseId: string) => ({
    kind: "refreshed" as const,
    leaseId,
    refreshTokenRotated: false,
  });

  // The lease lasts longer than the provider timeout, however it is configured.
  vi.stubEnv("PROVIDER_TIMEOUT_MS", "300000");
  const stale = await t.mutation(internal.oauth.tokenStore.claimRefresh, {
    connectionId,
    version,
  });
  if (stale.kind !== "claimed") throw new Error("not claimed");
  expect((await row(t, connectionId))!.refreshLease!.expiresAt - Date.now()).toBeGreaterThan(300_000);
  vi.unstubAllEnvs();

  // The first holder's lease runs out; a second sync claims the same version.
  await t.run((ctx) =>
    ctx.db.patch("connections", connectionId, {
      refreshLease: { leaseId: stale.leaseId, expiresAt: Date.now() - 1 },
    }),
  );
  const current = await t.mutation(internal.oauth.tokenStore.claimRefresh, {
    connectionId,
    version,
  });
  if (current.kind !== "claimed") throw new Error("not claimed");

  // The stale holder's token was spent by the current one: its invalid_grant marks nothing, its write is refused.
  expect(
    await t.mutation(internal.oauth.tokenStore.markNeedsReauth, {
      connectionId,
      version,
      leaseId: stale.leaseId,
    }),
  ).toEqual({ kind: "lease_lost" });
  expect((await row(t, connectionId))?.status).toBe("pending");
  expect(
    await t.mutation(internal.oauth.tokenStore.writeGrant, {
      connectionId,
      expectedVersion: version,
      encryptedCredentials: sealed,
      event: refreshed(stale.leaseId),
    }),
  ).toBe("lease_lost");
  expect((await row(t, connectionId))?.secretVersion).toBe(version);

  // The current holder's write wins, and takes a needs_reauth status (however it got there) back to pending.
  await t.run((ctx) =>
    ctx.db.patch("connections", connectionId, {
      status: "needs_reauth",
      lastError: "x",
    }),
  );
  expect(
    await t.mutation(internal.oauth.tokenStore.writeGrant, {
      connectionId,
      expectedVersion: version,
      encryptedCredentials: sealed,
      event: refreshed(current.leaseId),
    }),
  ).toBe("written");
  const after = await row(t, connectionId);
  expect(after).toMatchObject({
    status: "pending",
    secretVersion: version + 1,
  });
  expect(after?.lastError).toBeUndefined();
  expect(after?.refreshLease).toBeUndefined();
});

test("invalid_grant on a refresh for a connection paused mid-sync keeps it paused (inactive, never due, 0 needs_reauth marks); after resuming, the next sync marks it", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  fake().oauth.revokeEverything();
  // The admin pauses the connection while its sync waits for the token endpoint.
  fake().oauth.beforeTokenAnswer = async (grantType) => {
    if (grantType === "refresh_token") await admin.mutation(api.connections.pause, { connectionId });
  };

  await syncOnce(t, connectionId);
  const paused = await row(t, connectionId);
  expect(paused?.status).toBe("inactive");
  expect(paused?.nextSyncAt).toBe(PAUSED_NEXT_SYNC_AT);
  expect(paused?.refreshLease).toBeUndefined();
  expect(paused?.lastError).toBeUndefined();
  expect(await auditActions(t, connectionId)).not.toContain("connection.needs_reauth");

  fake().oauth.beforeTokenAnswer = undefined;
  await admin.mutation(api.connections.resume, { connectionId });
  expect((await syncOnce(t, connectionId))?.status).toBe("needs_reauth");
  expect((await row(t, connectionId))?.status).toBe("needs_reauth");
  expect(await auditActions(t, connectionId)).toContain("connection.needs_reauth");
});
