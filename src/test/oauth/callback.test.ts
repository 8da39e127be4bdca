// Google Analytics 4 over OAuth 2.0 against the loopback fake Google. The callback at /oauth/callback: the code kept encrypted until finishOAuth, malformed and unknown states (throttled per source, never a known one).
// Tokens, codes, the PKCE verifier and the client secret must never appear in a return value, URL, log,
// error or stored non-ciphertext field (the console is checked after every test by useFakeProviders).
import { createHash } from "node:crypto";
import { expect, test } from "vitest";
import { api } from "../../convex/_generated/api";
import { credentialHints } from "../../convex/providers/integrations/registry";
import { AUTH_FAILURE_LIMITS } from "../../convex/access/rateLimits";
import { everythingStored, projectWithEveryRole } from "../helpers/api";
import { newBackend } from "../helpers/convex";
import { SECRETS, TEST_SITE_URL, expectNoSecrets, useFakeProviders } from "../helpers/secrets";
import { SERVICE, SETTINGS, oauthSteps } from "../helpers/oauthFlow";

const fake = useFakeProviders();
const {
  issued,
  tokenRequests,
  redirectTarget,
  connect,
  completionToken,
  finish,

  row,
  auditActions,
  storedCredentials,
  gaMetrics,
} = oauthSteps(fake);

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

  const { connectionId } = await admin.action(api.connections.finishOAuth, {
    flow: flowToken,
  });

  const [exchange] = tokenRequests("authorization_code");
  const form = new URLSearchParams(exchange!.body);
  expect(form.get("redirect_uri")).toBe(`${TEST_SITE_URL}/oauth/callback`);
  expect(form.get("client_secret")).toBe(SECRETS.googleClientSecret);
  expect(form.get("code_verifier")).toMatch(/^[A-Za-z0-9_-]{43}$/);

  const summary = await member.query(api.connections.get, { connectionId });
  expect(summary).toMatchObject({
    service: SERVICE,
    status: "pending",
    name: "Google Analytics",
  });
  expect(summary.credentialHints).toEqual({
    account: "Google account connected",
    propertyId: SECRETS.gaPropertyId,
  });
  expectNoSecrets(summary, issued());
  expect(await t.run((ctx) => ctx.db.query("oauthStates").collect())).toEqual([]);
  expect((await row(t, connectionId))?.secretVersion).toBe(1);
  expect(await auditActions(t, connectionId)).toEqual(["connection.created", "connection.oauth_connected"]);
  // Hints of the stored credentials object (as the rotation job recomputes them) show no token material either.
  const credentials = await storedCredentials(t, connectionId);
  expect(Object.keys(credentials).sort()).toEqual(["accessToken", "accessTokenExpiresAt", "propertyId", "refreshToken"]);
  expect(credentialHints(SERVICE, credentials)).toEqual(summary.credentialHints);

  // A sync reads GA4 with the access token (no refresh needed).
  const result = await member.action(api.connections.syncMetrics, {
    connectionId,
  });
  expect(result).toEqual({ status: "active", metricsStored: 3 });
  expect(await gaMetrics(t, connectionId)).toEqual({
    active_users: 321,
    sessions: 456,
    page_views: 1789,
  });
  const report = fake().requests.find((request) => request.route === "ga4.runReport")!;
  expect(report.path).toBe(`/v1beta/properties/${SECRETS.gaPropertyId}:runReport`);
  expect(report.headers.authorization).toBe(`Bearer ${credentials.accessToken}`);
  expect(tokenRequests("refresh_token")).toHaveLength(0);
  expectNoSecrets(await everythingStored(t), issued());
});

test("a malformed state is refused before any function call; unknown well-formed states are throttled per source", async () => {
  const t = newBackend();
  const source = t.withRequestMetadata({ ip: "198.51.100.7" });
  const bucketRows = () => t.run((ctx) => ctx.db.query("rateLimits").collect());
  for (const state of ["", "abc", "A".repeat(42), "A".repeat(44), "A".repeat(2048), `${"A".repeat(42)}=`, `${"A".repeat(42)}+`]) {
    const response = await source.fetch(`/oauth/callback?code=x&state=${encodeURIComponent(state)}`);
    expect(Object.fromEntries(redirectTarget(response).searchParams)).toEqual({
      oauth: "error",
      reason: "invalid_state",
    });
  }
  // Nothing was looked up or counted.
  expect(await bucketRows()).toEqual([]);

  const burst = AUTH_FAILURE_LIMITS.oauthCallbackFailureBySource.capacity;
  for (let n = 0; n < burst; n++) {
    const response = await source.fetch(`/oauth/callback?code=x&state=${String(n).padStart(43, "A")}`);
    expect(Object.fromEntries(redirectTarget(response).searchParams)).toEqual({
      oauth: "error",
      reason: "invalid_state",
    });
  }
  const refused = await source.fetch(`/oauth/callback?code=x&state=${"B".repeat(43)}`);
  expect(refused.status).toBe(429);
  expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
  // Another source is not slowed.
  const other = await t.withRequestMetadata({ ip: "203.0.113.9" }).fetch(`/oauth/callback?code=x&state=${"B".repeat(43)}`);
  expect(Object.fromEntries(redirectTarget(other).searchParams)).toEqual({
    oauth: "error",
    reason: "invalid_state",
  });
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
