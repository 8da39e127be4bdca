// Google Analytics 4 over OAuth 2.0 against the loopback fake Google (token,
// revocation, GA4 Data API): the authorization URL, the callback, finishing
// the flow as the signed-in user who started it, refresh
// with rotation, refresh races, invalid_grant → needs_reauth, revocation on
// disconnect. Tokens, codes, the PKCE verifier and the client secret must
// never appear in a return value, URL, log, error or stored non-ciphertext
// field (the console is checked after every test by useFakeProviders).
import { createHash } from "node:crypto";
import { expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { credentialHints } from "../convex/providers/integrations/registry";
import { OAUTH_STATE_TTL_MS } from "../convex/oauth/start";
import { AUTH_FAILURE_LIMITS } from "../convex/rateLimits";
import { decryptCodeVerifier, decryptCredentials, loadKeyring, readRootSalt } from "../convex/secrets";
import { errorOf, everythingStored, projectWithEveryRole, type Caller } from "./helpers/api";
import { identity, newBackend, type Backend } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "./helpers/keys";
import { LEGACY_READ } from "./helpers/legacy";
import { SECRETS, TEST_DASHBOARD_URL, TEST_SITE_URL, expectNoSecrets, useFakeProviders } from "./helpers/secrets";
import { HUGE_BODY_BYTES } from "./helpers/fakeProviders";

const fake = useFakeProviders();
const SERVICE = "google_analytics";
const SETTINGS = { propertyId: SECRETS.gaPropertyId };

/** Everything secret the fake issued, plus the static secrets (checked by expectNoSecrets). */
function issued(): string[] {
  return fake().oauth.issued;
}

function tokenRequests(grantType?: string) {
  return fake().requests.filter(
    (request) => request.route === "google.token" && (!grantType || new URLSearchParams(request.body).get("grant_type") === grantType),
  );
}

/** The dashboard URL the callback redirected to, checked to carry nothing secret. */
function redirectTarget(response: Response): URL {
  expect(response.status).toBe(302);
  expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
  const location = response.headers.get("Location") ?? "";
  expectNoSecrets(location, issued());
  const url = new URL(location);
  expect(`${url.origin}${url.pathname}`).toBe(TEST_DASHBOARD_URL);
  return url;
}

/** startOAuth → the user consents at the fake → the browser comes back to /oauth/callback. */
async function connect(
  t: Backend,
  admin: Caller,
  projectId: Id<"projects">,
  options: { connectionId?: Id<"connections"> } = {},
): Promise<{ response: Response; authorizationUrl: string; state: string }> {
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, {
    projectId,
    service: SERVICE,
    settings: SETTINGS,
    ...options,
  });
  const { callbackPath, state } = fake().oauth.authorize(authorizationUrl);
  const response = await t.fetch(callbackPath);
  return { response, authorizationUrl, state };
}

/** The completion token of a callback that received a code (the dashboard URL's `flow`). */
function completionToken(response: Response): string {
  const target = redirectTarget(response);
  expect([...target.searchParams.keys()].sort()).toEqual(["flow", "oauth"]);
  expect(target.searchParams.get("oauth")).toBe("received");
  return target.searchParams.get("flow") ?? "";
}

/** What the dashboard does after the callback: connections.finishOAuth as the signed-in user. */
async function finish(caller: Caller, response: Response): Promise<Id<"connections">> {
  const { connectionId } = await caller.action(api.connections.finishOAuth, { flow: completionToken(response) });
  return connectionId;
}

async function connected(t: Backend, admin: Caller, projectId: Id<"projects">): Promise<Id<"connections">> {
  const { response } = await connect(t, admin, projectId);
  return finish(admin, response);
}

async function row(t: Backend, connectionId: Id<"connections">) {
  return t.run((ctx) => ctx.db.get("connections", connectionId));
}

async function auditActions(t: Backend, connectionId: Id<"connections">): Promise<string[]> {
  const entries = await t.run((ctx) =>
    ctx.db
      .query("auditLog")
      .withIndex("by_targetId_and_at", (q) => q.eq("targetId", connectionId))
      .collect(),
  );
  return entries.map((entry) => entry.action);
}

/** The deployment's keyring, as an action loads it (with the stored root salt). */
async function keyring(t: Backend) {
  return loadKeyring(await t.run((ctx) => readRootSalt(ctx.db)));
}

/** The credentials the row's ciphertext holds (decrypted as the sync would, at the row's secretVersion). */
async function storedCredentials(t: Backend, connectionId: Id<"connections">) {
  const connection = await row(t, connectionId);
  if (!connection?.encryptedCredentials) throw new Error("no credentials stored");
  const { projectId, encryptedCredentials, secretVersion } = connection;
  return (await decryptCredentials(await keyring(t), projectId, connectionId, encryptedCredentials, secretVersion, LEGACY_READ))
    .credentials;
}

async function storedRefreshToken(t: Backend, connectionId: Id<"connections">): Promise<string | undefined> {
  return (await storedCredentials(t, connectionId)).refreshToken;
}

/** One cron-style sync of one connection (a group of one), its result. */
async function syncOnce(t: Backend, connectionId: Id<"connections">) {
  const [result] = await t.action(internal.metricsSync.syncGroup, { connectionIds: [connectionId] });
  return result;
}

async function gaMetrics(t: Backend, connectionId: Id<"connections">): Promise<Record<string, number>> {
  const metrics = await t.run((ctx) =>
    ctx.db
      .query("metrics")
      .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connectionId))
      .collect(),
  );
  return Object.fromEntries(metrics.map((metric) => [metric.name, metric.value]));
}

test("startOAuth: admins get Google's authorization URL with an S256 PKCE challenge and a single-use state stored hashed", async () => {
  const t = newBackend();
  const { projectId, admin, member } = await projectWithEveryRole(t);

  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });

  const url = new URL(authorizationUrl);
  expect(`${url.origin}${url.pathname}`).toBe(`${fake().url}/o/oauth2/v2/auth`);
  const params = url.searchParams;
  expect(params.get("client_id")).toBe(SECRETS.googleClientId);
  expect(params.get("redirect_uri")).toBe(`${TEST_SITE_URL}/oauth/callback`);
  expect(params.get("response_type")).toBe("code");
  expect(params.get("scope")).toBe("https://www.googleapis.com/auth/analytics.readonly");
  expect(params.get("access_type")).toBe("offline");
  expect(params.get("code_challenge_method")).toBe("S256");
  const challenge = params.get("code_challenge") ?? "";
  const state = params.get("state") ?? "";
  expect(state).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(authorizationUrl).not.toContain(SECRETS.googleClientSecret);

  const [flow] = await t.run((ctx) => ctx.db.query("oauthStates").collect());
  expect(flow?.stateHash).toBe(createHash("sha256").update(state).digest("hex"));
  expect(flow?.expiresAt).toBe((flow?.createdAt ?? 0) + OAUTH_STATE_TTL_MS);
  expect(flow?.encryptedCodeVerifier).toMatch(/^dtenc:/);
  // The verifier behind the challenge exists only as ciphertext.
  const verifier = await decryptCodeVerifier(await keyring(t), projectId, flow!._id, flow!.encryptedCodeVerifier!);
  expect(createHash("sha256").update(verifier).digest("base64url")).toBe(challenge);
  const stored = await everythingStored(t);
  expect(stored).not.toContain(verifier);
  expect(stored).not.toContain(state);

  expect((await errorOf(member.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS }))).code).toBe(
    "FORBIDDEN",
  );
  expect(
    (await errorOf(admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: { propertyId: "../x" } }))).code,
  ).toBe("INVALID_CREDENTIALS");
  expect((await errorOf(admin.mutation(api.connections.startOAuth, { projectId, service: "stripe", settings: {} }))).code).toBe(
    "INVALID_ARGUMENT",
  );
  // OAuth integrations are never created from typed-in credentials.
  expect(
    (await errorOf(admin.mutation(api.connections.create, { projectId, service: SERVICE, credentials: SETTINGS }))).code,
  ).toBe("INVALID_CREDENTIALS");
});

test("the callback keeps the code encrypted; finishOAuth exchanges it with the verifier and stores the tokens encrypted", async () => {
  const t = newBackend();
  const { projectId, admin, member } = await projectWithEveryRole(t);
  const { response, state } = await connect(t, admin, projectId);

  // The callback exchanged nothing: the code waits, encrypted, on the flow, now found by the completion token's hash.
  const flowToken = completionToken(response);
  expect(flowToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(tokenRequests("authorization_code")).toHaveLength(0);
  const [flow] = await t.run((ctx) => ctx.db.query("oauthStates").collect());
  expect(flow?.encryptedCode).toMatch(/^dtenc:/);
  expect(flow?.stateHash).toBe(createHash("sha256").update(flowToken).digest("hex"));
  expect(flow?.stateHash).not.toBe(createHash("sha256").update(state).digest("hex"));
  expectNoSecrets(await everythingStored(t), issued());

  const { connectionId } = await admin.action(api.connections.finishOAuth, { flow: flowToken });

  const [exchange] = tokenRequests("authorization_code");
  const form = new URLSearchParams(exchange!.body);
  expect(form.get("redirect_uri")).toBe(`${TEST_SITE_URL}/oauth/callback`);
  expect(form.get("client_secret")).toBe(SECRETS.googleClientSecret);
  expect(form.get("code_verifier")).toMatch(/^[A-Za-z0-9_-]{43}$/);

  const summary = await member.query(api.connections.get, { connectionId });
  expect(summary).toMatchObject({ service: SERVICE, status: "pending", name: "Google Analytics" });
  expect(summary.credentialHints).toEqual({ account: "Google account connected", propertyId: SECRETS.gaPropertyId });
  expectNoSecrets(summary, issued());
  expect(await t.run((ctx) => ctx.db.query("oauthStates").collect())).toEqual([]);
  expect((await row(t, connectionId))?.secretVersion).toBe(1);
  expect(await auditActions(t, connectionId)).toEqual(["connection.created", "connection.oauth_connected"]);
  // Hints of the stored credentials object (as the rotation job recomputes them) show no token material either.
  const credentials = await storedCredentials(t, connectionId);
  expect(Object.keys(credentials).sort()).toEqual(["accessToken", "accessTokenExpiresAt", "propertyId", "refreshToken"]);
  expect(credentialHints(SERVICE, credentials)).toEqual(summary.credentialHints);

  // A sync reads GA4 with the access token (no refresh needed).
  const result = await member.action(api.connections.syncMetrics, { connectionId });
  expect(result).toEqual({ status: "active", metricsStored: 3 });
  expect(await gaMetrics(t, connectionId)).toEqual({ active_users: 321, sessions: 456, page_views: 1789 });
  const report = fake().requests.find((request) => request.route === "ga4.runReport")!;
  expect(report.path).toBe(`/v1beta/properties/${SECRETS.gaPropertyId}:runReport`);
  expect(report.headers.authorization).toBe(`Bearer ${credentials.accessToken}`);
  expect(tokenRequests("refresh_token")).toHaveLength(0);
  expectNoSecrets(await everythingStored(t), issued());
});

test("the state is single use, expires, and is bound to an admin of the project", async () => {
  const t = newBackend();
  const { projectId, owner, admin } = await projectWithEveryRole(t);

  // Replay: the second use of the same callback finds no flow; a finished flow cannot be finished again.
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const replayed = fake().oauth.authorize(authorizationUrl);
  const first = await t.fetch(replayed.callbackPath);
  const again = redirectTarget(await t.fetch(replayed.callbackPath));
  expect(Object.fromEntries(again.searchParams)).toEqual({ oauth: "error", reason: "invalid_state" });
  const flowToken = completionToken(first);
  await admin.action(api.connections.finishOAuth, { flow: flowToken });
  const exchanges = tokenRequests("authorization_code").length;
  expect(exchanges).toBe(1);
  expect((await errorOf(admin.action(api.connections.finishOAuth, { flow: flowToken }))).code).toBe("NOT_FOUND");
  expect(tokenRequests("authorization_code")).toHaveLength(exchanges);

  // Expired.
  const late = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  await t.run(async (ctx) => {
    for (const flow of await ctx.db.query("oauthStates").collect()) await ctx.db.patch("oauthStates", flow._id, { expiresAt: Date.now() - 1 });
  });
  const expired = redirectTarget(await t.fetch(fake().oauth.authorize(late.authorizationUrl).callbackPath));
  expect(Object.fromEntries(expired.searchParams)).toEqual({ oauth: "error", reason: "expired" });

  // Expired between the callback and finishOAuth.
  const slow = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const slowToken = completionToken(await t.fetch(fake().oauth.authorize(slow.authorizationUrl).callbackPath));
  await t.run(async (ctx) => {
    for (const flow of await ctx.db.query("oauthStates").collect()) await ctx.db.patch("oauthStates", flow._id, { expiresAt: Date.now() - 1 });
  });
  expect((await errorOf(admin.action(api.connections.finishOAuth, { flow: slowToken }))).code).toBe("NOT_FOUND");
  expect(await t.run((ctx) => ctx.db.query("oauthStates").collect())).toEqual([]);

  // The user who started it is no longer an admin when they finish it.
  const demoted = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const demotedToken = completionToken(await t.fetch(fake().oauth.authorize(demoted.authorizationUrl).callbackPath));
  // (The project API has no role change: the membership is edited directly.)
  await t.run(async (ctx) => {
    const bob = (await ctx.db.query("users").collect()).find((user) => user.email === identity("bob").email)!;
    const membership = await ctx.db
      .query("projectMembers")
      .withIndex("by_projectId_and_userId", (q) => q.eq("projectId", projectId).eq("userId", bob._id))
      .unique();
    await ctx.db.patch("projectMembers", membership!._id, { role: "member" });
  });
  expect((await errorOf(admin.action(api.connections.finishOAuth, { flow: demotedToken }))).code).toBe("FORBIDDEN");
  expect(tokenRequests("authorization_code")).toHaveLength(exchanges);

  // The user declined at Google: the flow is consumed, nothing exchanged.
  const declined = await owner.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const state = new URL(declined.authorizationUrl).searchParams.get("state")!;
  const denied = redirectTarget(await t.fetch(`/oauth/callback?error=access_denied&state=${state}`));
  expect(Object.fromEntries(denied.searchParams)).toEqual({ oauth: "error", reason: "denied" });
  expect(tokenRequests("authorization_code")).toHaveLength(exchanges);
  expect(await t.run((ctx) => ctx.db.query("oauthStates").collect())).toEqual([]);

  // No state at all.
  expect(Object.fromEntries(redirectTarget(await t.fetch("/oauth/callback?code=abc")).searchParams)).toEqual({
    oauth: "error",
    reason: "invalid_state",
  });
});

test("a victim who consents to an attacker's authorization URL does not connect their Google account to the attacker's project", async () => {
  const t = newBackend();
  const { owner: victim, outsider: attacker } = await projectWithEveryRole(t);
  const attackersProject = await attacker.mutation(api.projects.create, { name: "Mallory's" });
  // The attacker starts a flow in their own project and sends the victim the (genuine Google) URL.
  const { authorizationUrl } = await attacker.mutation(api.connections.startOAuth, {
    projectId: attackersProject,
    service: SERVICE,
    settings: SETTINGS,
  });
  const state = new URL(authorizationUrl).searchParams.get("state")!;
  // The victim consents; Google sends the victim's browser to the callback, which exchanges nothing.
  const { callbackPath } = fake().oauth.authorize(authorizationUrl);
  const victimsToken = completionToken(await t.fetch(callbackPath));
  expect(tokenRequests("authorization_code")).toHaveLength(0);

  // The attacker knows the state, not the completion token the victim's browser got.
  expect((await errorOf(attacker.action(api.connections.finishOAuth, { flow: state }))).code).toBe("NOT_FOUND");
  // The victim's dashboard finishes the flow as the victim, who did not start it: refused, and the flow is gone.
  expect((await errorOf(victim.action(api.connections.finishOAuth, { flow: victimsToken }))).code).toBe("FORBIDDEN");
  expect((await errorOf(attacker.action(api.connections.finishOAuth, { flow: victimsToken }))).code).toBe("NOT_FOUND");

  expect(tokenRequests("authorization_code")).toHaveLength(0);
  expect(await t.run((ctx) => ctx.db.query("connections").collect())).toEqual([]);
  expect(await t.run((ctx) => ctx.db.query("oauthStates").collect())).toEqual([]);
});

test("a malformed state is refused before any function call; unknown well-formed states are throttled per source", async () => {
  const t = newBackend();
  const source = t.withRequestMetadata({ ip: "198.51.100.7" });
  const bucketRows = () => t.run((ctx) => ctx.db.query("rateLimits").collect());
  for (const state of ["", "abc", "A".repeat(42), "A".repeat(44), "A".repeat(2048), `${"A".repeat(42)}=`, `${"A".repeat(42)}+`]) {
    const response = await source.fetch(`/oauth/callback?code=x&state=${encodeURIComponent(state)}`);
    expect(Object.fromEntries(redirectTarget(response).searchParams)).toEqual({ oauth: "error", reason: "invalid_state" });
  }
  // Nothing was looked up or counted.
  expect(await bucketRows()).toEqual([]);

  const burst = AUTH_FAILURE_LIMITS.oauthCallbackFailureBySource.capacity;
  for (let n = 0; n < burst; n++) {
    const response = await source.fetch(`/oauth/callback?code=x&state=${String(n).padStart(43, "A")}`);
    expect(Object.fromEntries(redirectTarget(response).searchParams)).toEqual({ oauth: "error", reason: "invalid_state" });
  }
  const refused = await source.fetch(`/oauth/callback?code=x&state=${"B".repeat(43)}`);
  expect(refused.status).toBe(429);
  expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
  // Another source is not slowed.
  const other = await t.withRequestMetadata({ ip: "203.0.113.9" }).fetch(`/oauth/callback?code=x&state=${"B".repeat(43)}`);
  expect(Object.fromEntries(redirectTarget(other).searchParams)).toEqual({ oauth: "error", reason: "invalid_state" });
});

test("a failed code exchange whose error body echoes the code and verifier fails finishOAuth with a bare reason", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const { callbackPath, code } = fake().oauth.authorize(authorizationUrl);
  // Tamper with the code: the fake answers invalid_grant quoting what it got.
  const response = await t.fetch(callbackPath.replace(encodeURIComponent(code), encodeURIComponent(`${code}x`)));

  const error = await errorOf(admin.action(api.connections.finishOAuth, { flow: completionToken(response) }));
  expect(error).toMatchObject({ code: "PROVIDER_ERROR", reason: "invalid_grant" });
  expectNoSecrets(error, [...issued(), `${code}x`]);
  expect(tokenRequests("authorization_code")).toHaveLength(1);
  expect(await t.run((ctx) => ctx.db.query("connections").collect())).toEqual([]);
  expectNoSecrets(await everythingStored(t), [...issued(), `${code}x`]);
});

test("an access token expiring within the margin is refreshed; a rotated refresh token replaces the stored one", async () => {
  const t = newBackend();
  const { projectId, admin, member } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60; // inside the 5-minute margin
  const connectionId = await connected(t, admin, projectId);
  const firstRefreshToken = await storedRefreshToken(t, connectionId);

  const result = await member.action(api.connections.syncMetrics, { connectionId });

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

  const results = await Promise.all([
    syncOnce(t, connectionId),
    syncOnce(t, connectionId),
  ]);

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

  const result = await member.action(api.connections.syncMetrics, { connectionId });

  const message = "Google Analytics access was revoked or has expired; connect the account again";
  expect(result).toEqual({ status: "needs_reauth", metricsStored: 0, error: message });
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
  expect(await syncOnce(t, connectionId)).toEqual({ status: "active", metricsStored: 3 });
  expectNoSecrets([result, await everythingStored(t)], issued());
});

test("other refresh failures leave the grant alone: status error, lease released, next sync retries", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  fake().setMode("google.token", 503);

  const failed = await syncOnce(t, connectionId);
  expect(failed).toEqual({ status: "error", metricsStored: 0, error: "Google Analytics is unavailable (HTTP 503)" });
  expect((await row(t, connectionId))?.refreshLease).toBeUndefined();
  expect((await row(t, connectionId))?.secretVersion).toBe(1);

  fake().setMode("google.token", "ok");
  expect(await syncOnce(t, connectionId)).toEqual({ status: "active", metricsStored: 3 });
});

test("removing an OAuth connection revokes the grant at Google and deletes the tokens", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const connectionId = await connected(t, admin, projectId);
  const refreshToken = await storedRefreshToken(t, connectionId);

  await admin.mutation(api.connections.remove, { connectionId });
  expect(await row(t, connectionId)).toBeNull();
  await t.finishInProgressScheduledFunctions();
  // The revocation action was scheduled to run now; let it start, then wait for it.
  for (let i = 0; i < 50 && (await t.run((ctx) => ctx.db.query("oauthRevocations").collect())).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    await t.finishInProgressScheduledFunctions();
  }

  expect(fake().oauth.revoked).toEqual([refreshToken]);
  expect(fake().oauth.liveRefreshTokens.has(refreshToken!)).toBe(false);
  expect(await t.run((ctx) => ctx.db.query("oauthRevocations").collect())).toEqual([]);
  expect(await auditActions(t, connectionId)).toContain("connection.tokens_revoked");
  const entries = await t.run((ctx) => ctx.db.query("auditLog").collect());
  expect(entries.find((entry) => entry.action === "connection.tokens_revoked")?.detail).toBe("revoked");
  expectNoSecrets(await everythingStored(t), issued());
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
  const error = await errorOf(admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS }));
  expect(error).toEqual({
    code: "PROVIDER_ERROR",
    message: "Google Analytics (GOOGLE_OAUTH_CLIENT_ID) is not configured on this deployment",
    service: "Google Analytics (GOOGLE_OAUTH_CLIENT_ID)",
    reason: "not_configured",
  });
});

test("a token ciphertext restored from before a refresh does not decrypt (the version is in the AAD)", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  const before = (await row(t, connectionId))!.encryptedCredentials!;
  fake().oauth.accessTokenLifetimeSeconds = 3600;
  expect(await syncOnce(t, connectionId)).toMatchObject({ status: "active" });
  expect((await row(t, connectionId))?.secretVersion).toBe(2);

  // Restoring the version-1 ciphertext (from a backup, say) into the version-2 row brings nothing back.
  await t.run((ctx) => ctx.db.patch("connections", connectionId, { encryptedCredentials: before }));
  expect((await errorOf(storedCredentials(t, connectionId))).code).toBe("DECRYPTION_FAILED");
});

test("master-key rotation re-encrypts OAuth tokens like any credentials; syncs and refreshes go on under the new key", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.accessTokenLifetimeSeconds = 60;
  const connectionId = await connected(t, admin, projectId);
  const refreshToken = await storedRefreshToken(t, connectionId);
  const before = await row(t, connectionId);

  vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
  vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
  vi.useFakeTimers();
  await t.mutation(internal.keyRotation.rotate, {});
  await t.finishAllScheduledFunctions(() => vi.runAllTimers(), 1_000);
  vi.useRealTimers();
  const status = await t.action(internal.keyRotation.status, {});
  expect(status).toMatchObject({ job: { status: "done" }, safeToRemoveOldKey: true });

  const after = await row(t, connectionId);
  expect(after?.encryptedCredentials).not.toBe(before?.encryptedCredentials);
  expect(after?.secretVersion).toBe(before?.secretVersion);
  expect(after?.credentialHints).toEqual(before?.credentialHints);
  vi.stubEnv("OLD_MASTER_KEY", "");
  expect(await storedRefreshToken(t, connectionId)).toBe(refreshToken);
  expect(await syncOnce(t, connectionId)).toEqual({ status: "active", metricsStored: 3 });
  expect(tokenRequests("refresh_token")).toHaveLength(1);
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
  const refreshed = (leaseId: string) => ({ kind: "refreshed" as const, leaseId, refreshTokenRotated: false });

  // The lease lasts longer than the provider timeout, however it is configured.
  vi.stubEnv("PROVIDER_TIMEOUT_MS", "300000");
  const stale = await t.mutation(internal.oauth.claimRefresh, { connectionId, version });
  if (stale.kind !== "claimed") throw new Error("not claimed");
  expect((await row(t, connectionId))!.refreshLease!.expiresAt - Date.now()).toBeGreaterThan(300_000);
  vi.unstubAllEnvs();

  // The first holder's lease runs out; a second sync claims the same version.
  await t.run((ctx) => ctx.db.patch("connections", connectionId, { refreshLease: { leaseId: stale.leaseId, expiresAt: Date.now() - 1 } }));
  const current = await t.mutation(internal.oauth.claimRefresh, { connectionId, version });
  if (current.kind !== "claimed") throw new Error("not claimed");

  // The stale holder's token was spent by the current one: its invalid_grant marks nothing, its write is refused.
  expect(await t.mutation(internal.oauth.markNeedsReauth, { connectionId, version, leaseId: stale.leaseId })).toEqual({ kind: "lease_lost" });
  expect((await row(t, connectionId))?.status).toBe("pending");
  expect(
    await t.mutation(internal.oauth.writeGrant, { connectionId, expectedVersion: version, encryptedCredentials: sealed, event: refreshed(stale.leaseId) }),
  ).toBe("lease_lost");
  expect((await row(t, connectionId))?.secretVersion).toBe(version);

  // The current holder's write wins, and takes a needs_reauth status (however it got there) back to pending.
  await t.run((ctx) => ctx.db.patch("connections", connectionId, { status: "needs_reauth", lastError: "x" }));
  expect(
    await t.mutation(internal.oauth.writeGrant, { connectionId, expectedVersion: version, encryptedCredentials: sealed, event: refreshed(current.leaseId) }),
  ).toBe("written");
  const after = await row(t, connectionId);
  expect(after).toMatchObject({ status: "pending", secretVersion: version + 1 });
  expect(after?.lastError).toBeUndefined();
  expect(after?.refreshLease).toBeUndefined();
});

test("safeToRemoveOldKey waits for sign-ins and revocations that predate the rotation (their ciphertexts are not rotated)", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  // A sign-in in progress (its verifier under the old key) and a revocation waiting for its action.
  await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const connectionId = await connected(t, admin, projectId);
  const pendingRevocation = await t.run(async (ctx) => {
    const connection = (await ctx.db.get("connections", connectionId))!;
    return ctx.db.insert("oauthRevocations", {
      projectId,
      connectionId,
      service: SERVICE,
      secretVersion: connection.secretVersion ?? 0,
      encryptedCredentials: connection.encryptedCredentials!,
      createdAt: Date.now(),
    });
  });

  vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
  vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
  await new Promise((resolve) => setTimeout(resolve, 5)); // the rows are strictly older than the job
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
  await t.mutation(internal.keyRotation.rotate, {});
  await t.finishAllScheduledFunctions(() => vi.runAllTimers(), 1_000);
  vi.useRealTimers();
  const safe = async () => (await t.action(internal.keyRotation.status, {})).safeToRemoveOldKey;
  expect((await t.action(internal.keyRotation.status, {})).job?.status).toBe("done");
  expect(await t.run((ctx) => ctx.db.query("oauthStates").collect())).toHaveLength(1);
  expect(await safe()).toBe(false);

  // The flow expires and is deleted: the revocation still holds an old-key ciphertext.
  await t.run(async (ctx) => {
    for (const flow of await ctx.db.query("oauthStates").collect()) await ctx.db.delete("oauthStates", flow._id);
  });
  expect(await safe()).toBe(false);
  await t.run((ctx) => ctx.db.delete("oauthRevocations", pendingRevocation));
  expect(await safe()).toBe(true);
});

test("the authorization URL asks for the analytics scope only: no include_granted_scopes", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const params = new URL(authorizationUrl).searchParams;
  expect(params.has("include_granted_scopes")).toBe(false);
  expect(params.get("scope")).toBe("https://www.googleapis.com/auth/analytics.readonly");
});

test("a victim's callback is answered (never 429) after a forged source exhausted its 20 unknown-state failures", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const { callbackPath } = fake().oauth.authorize(authorizationUrl);
  // The attacker claims the victim's address (X-Forwarded-For) and spends its bucket on unknown states.
  const victimAddress = t.withRequestMetadata({ ip: "198.51.100.77" });
  const burst = AUTH_FAILURE_LIMITS.oauthCallbackFailureBySource.capacity;
  for (let n = 0; n <= burst; n++) await victimAddress.fetch(`/oauth/callback?code=x&state=${String(n).padStart(43, "C")}`);
  expect((await victimAddress.fetch(`/oauth/callback?code=x&state=${"D".repeat(43)}`)).status).toBe(429);

  // The victim's own callback, from the same claimed address, has a known state: checked first, never throttled.
  const response = await victimAddress.fetch(callbackPath);
  expect(redirectTarget(response).searchParams.get("oauth")).toBe("received");
  expect(await finish(admin, response)).toBeDefined();
});

test("a finishOAuth that fails after the code exchange (owner at 100 connections: LIMIT_REACHED) revokes the grant it obtained", async () => {
  const t = newBackend();
  const { projectId, admin, owner } = await projectWithEveryRole(t);
  const { response } = await connect(t, admin, projectId);
  // The project's owner reaches the per-user cap of 100 connections meanwhile, in another project of theirs.
  const otherProject = await owner.mutation(api.projects.create, { name: "Side project" });
  await t.run(async (ctx) => {
    for (let i = 0; i < 100; i++) {
      await ctx.db.insert("connections", {
        projectId: otherProject,
        service: "github",
        status: "active",
        healthScore: 100,
        createdAt: Date.now(),
        updatedAt: Date.now(),
      });
    }
  });

  const error = await errorOf(admin.action(api.connections.finishOAuth, { flow: completionToken(response) }));
  expect(error).toMatchObject({ code: "LIMIT_REACHED", reason: "CONNECTIONS_PER_USER", limit: 100 });
  expect(tokenRequests("authorization_code")).toHaveLength(1);
  // The refresh token the exchange issued was revoked at Google, and is dead there.
  expect(fake().oauth.revoked).toHaveLength(1);
  expect(fake().oauth.liveRefreshTokens.has(fake().oauth.revoked[0]!)).toBe(false);
  expectNoSecrets(await everythingStored(t), issued());
});
