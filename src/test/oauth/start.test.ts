// Google Analytics 4 over OAuth 2.0 against the loopback fake Google. startOAuth: the authorization URL (PKCE S256, scope), the state: single use, expiring, bound to an admin of the project, never connecting a victim's account to an attacker's project.
// Tokens, codes, the PKCE verifier and the client secret must never appear in a return value, URL, log,
// error or stored non-ciphertext field (the console is checked after every test by useFakeProviders).
import { createHash } from "node:crypto";
import { expect, test } from "vitest";
import { api } from "../../convex/_generated/api";
import { MAX_PENDING_OAUTH_FLOWS, OAUTH_STATE_TTL_MS } from "../../convex/oauth/start";
import { decryptCodeVerifier } from "../../convex/storedSecrets/encryption";
import { errorOf, everythingStored, projectWithEveryRole } from "../helpers/api";
import { identity, newBackend } from "../helpers/convex";
import { SECRETS, TEST_SITE_URL, useFakeProviders } from "../helpers/secrets";
import { SERVICE, SETTINGS, oauthSteps } from "../helpers/oauthFlow";

const fake = useFakeProviders();
const { tokenRequests, redirectTarget, completionToken, keyring } = oauthSteps(fake);

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
  expect(params.get("scope")).toBe("openid https://www.googleapis.com/auth/analytics.readonly");
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

  expect(
    (
      await errorOf(
        member.mutation(api.connections.startOAuth, {
          projectId,
          service: SERVICE,
          settings: SETTINGS,
        }),
      )
    ).code,
  ).toBe("FORBIDDEN");
  expect(
    (
      await errorOf(
        admin.mutation(api.connections.startOAuth, {
          projectId,
          service: SERVICE,
          settings: { propertyId: "../x" },
        }),
      )
    ).code,
  ).toBe("INVALID_CREDENTIALS");
  expect(
    (
      await errorOf(
        admin.mutation(api.connections.startOAuth, {
          projectId,
          service: "stripe",
          settings: {},
        }),
      )
    ).code,
  ).toBe("INVALID_ARGUMENT");
  // OAuth integrations are never created from typed-in credentials.
  expect(
    (
      await errorOf(
        admin.mutation(api.connections.create, {
          projectId,
          service: SERVICE,
          credentials: SETTINGS,
        }),
      )
    ).code,
  ).toBe("INVALID_CREDENTIALS");
});

test("the authorization URL asks for openid and the analytics scope only (openid only names the account): no include_granted_scopes", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const params = new URL(authorizationUrl).searchParams;
  expect(params.has("include_granted_scopes")).toBe(false);
  expect(params.get("scope")).toBe("openid https://www.googleapis.com/auth/analytics.readonly");
});

test("the state is single use, expires, and is bound to an admin of the project", async () => {
  const t = newBackend();
  const { projectId, owner, admin } = await projectWithEveryRole(t);

  // Replay: the second use of the same callback finds no flow; a finished flow cannot be finished again.
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const replayed = fake().oauth.authorize(authorizationUrl);
  const first = await t.fetch(replayed.callbackPath);
  const again = redirectTarget(await t.fetch(replayed.callbackPath));
  expect(Object.fromEntries(again.searchParams)).toEqual({
    oauth: "error",
    reason: "invalid_state",
  });
  const flowToken = completionToken(first);
  await admin.action(api.connections.finishOAuth, { flow: flowToken });
  const exchanges = tokenRequests("authorization_code").length;
  expect(exchanges).toBe(1);
  expect((await errorOf(admin.action(api.connections.finishOAuth, { flow: flowToken }))).code).toBe("NOT_FOUND");
  expect(tokenRequests("authorization_code")).toHaveLength(exchanges);

  // Expired.
  const late = await admin.mutation(api.connections.startOAuth, {
    projectId,
    service: SERVICE,
    settings: SETTINGS,
  });
  await t.run(async (ctx) => {
    for (const flow of await ctx.db.query("oauthStates").collect())
      await ctx.db.patch("oauthStates", flow._id, {
        expiresAt: Date.now() - 1,
      });
  });
  const expired = redirectTarget(await t.fetch(fake().oauth.authorize(late.authorizationUrl).callbackPath));
  expect(Object.fromEntries(expired.searchParams)).toEqual({
    oauth: "error",
    reason: "expired",
  });

  // Expired between the callback and finishOAuth.
  const slow = await admin.mutation(api.connections.startOAuth, {
    projectId,
    service: SERVICE,
    settings: SETTINGS,
  });
  const slowToken = completionToken(await t.fetch(fake().oauth.authorize(slow.authorizationUrl).callbackPath));
  await t.run(async (ctx) => {
    for (const flow of await ctx.db.query("oauthStates").collect())
      await ctx.db.patch("oauthStates", flow._id, {
        expiresAt: Date.now() - 1,
      });
  });
  expect((await errorOf(admin.action(api.connections.finishOAuth, { flow: slowToken }))).code).toBe("NOT_FOUND");
  expect(await t.run((ctx) => ctx.db.query("oauthStates").collect())).toEqual([]);

  // The user who started it is no longer an admin when they finish it.
  const demoted = await admin.mutation(api.connections.startOAuth, {
    projectId,
    service: SERVICE,
    settings: SETTINGS,
  });
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
  const declined = await owner.mutation(api.connections.startOAuth, {
    projectId,
    service: SERVICE,
    settings: SETTINGS,
  });
  const state = new URL(declined.authorizationUrl).searchParams.get("state")!;
  const denied = redirectTarget(await t.fetch(`/oauth/callback?error=access_denied&state=${state}`));
  expect(Object.fromEntries(denied.searchParams)).toEqual({
    oauth: "error",
    reason: "denied",
  });
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
  const attackersProject = await attacker.mutation(api.projects.create, {
    name: "Mallory's",
  });
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

test("startOAuth: the 21st sign-in in progress is RATE_LIMITED until the oldest of the 20 expires (retryAt), through the one rateLimited", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const start = () => admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  for (let i = 0; i < MAX_PENDING_OAUTH_FLOWS; i++) await start();
  const oldest = Math.min(...(await t.run((ctx) => ctx.db.query("oauthStates").collect())).map((flow) => flow.expiresAt));
  const refused = (await errorOf(start())) as { code: string; message: string; retryAt?: number };
  expect(refused).toEqual({
    code: "RATE_LIMITED",
    message: expect.stringMatching(/^Too many sign-ins are in progress for this project; try again in \d+ s$/),
    retryAt: oldest,
  });
  expect((await t.run((ctx) => ctx.db.query("oauthStates").collect())).length).toBe(MAX_PENDING_OAUTH_FLOWS);
});
