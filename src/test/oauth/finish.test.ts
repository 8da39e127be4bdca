// Google Analytics 4 over OAuth 2.0 against the loopback fake Google. finishOAuth after the exchange: failures that echo secrets, and a grant obtained but not stored is revoked.
// Tokens, codes, the PKCE verifier and the client secret must never appear in a return value, URL, log,
// error or stored non-ciphertext field (the console is checked after every test by useFakeProviders).
import { expect, test } from "vitest";
import { api } from "../../convex/_generated/api";
import { errorOf, everythingStored, projectWithEveryRole } from "../helpers/api";
import { newBackend } from "../helpers/convex";
import { expectNoSecrets, useFakeProviders } from "../helpers/secrets";
import { SERVICE, SETTINGS, oauthSteps } from "../helpers/oauthFlow";

const fake = useFakeProviders();
const { issued, tokenRequests, connect, completionToken } = oauthSteps(fake);

test("a failed code exchange whose error body echoes the code and verifier fails finishOAuth with a bare reason", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const { authorizationUrl } = await admin.mutation(api.connections.startOAuth, { projectId, service: SERVICE, settings: SETTINGS });
  const { callbackPath, code } = fake().oauth.authorize(authorizationUrl);
  // Tamper with the code: the fake answers invalid_grant quoting what it got.
  const response = await t.fetch(callbackPath.replace(encodeURIComponent(code), encodeURIComponent(`${code}x`)));

  const error = await errorOf(
    admin.action(api.connections.finishOAuth, {
      flow: completionToken(response),
    }),
  );
  expect(error).toMatchObject({
    code: "PROVIDER_ERROR",
    reason: "invalid_grant",
  });
  expectNoSecrets(error, [...issued(), `${code}x`]);
  expect(tokenRequests("authorization_code")).toHaveLength(1);
  expect(await t.run((ctx) => ctx.db.query("connections").collect())).toEqual([]);
  expectNoSecrets(await everythingStored(t), [...issued(), `${code}x`]);
});

test("a finishOAuth that fails after the code exchange (owner at 100 connections: LIMIT_REACHED) revokes the grant it obtained", async () => {
  const t = newBackend();
  const { projectId, admin, owner } = await projectWithEveryRole(t);
  const { response } = await connect(t, admin, projectId);
  // The project's owner reaches the per-user cap of 100 connections meanwhile, in another project of theirs.
  const otherProject = await owner.mutation(api.projects.create, {
    name: "Side project",
  });
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

  const error = await errorOf(
    admin.action(api.connections.finishOAuth, {
      flow: completionToken(response),
    }),
  );
  expect(error).toMatchObject({
    code: "LIMIT_REACHED",
    reason: "CONNECTIONS_PER_USER",
    limit: 100,
  });
  expect(tokenRequests("authorization_code")).toHaveLength(1);
  // The refresh token the exchange issued was revoked at Google, and is dead there.
  expect(fake().oauth.revoked).toHaveLength(1);
  expect(fake().oauth.liveRefreshTokens.has(fake().oauth.revoked[0]!)).toBe(false);
  expectNoSecrets(await everythingStored(t), issued());
});

test("finishOAuth after the project was removed during the code exchange answers NOT_FOUND (was CONFLICT) and revokes the grant it obtained (1 revocation)", async () => {
  const t = newBackend();
  const { projectId, admin, owner } = await projectWithEveryRole(t);
  const { response } = await connect(t, admin, projectId);
  fake().oauth.beforeTokenAnswer = async (grantType) => {
    if (grantType === "authorization_code") await owner.mutation(api.projects.remove, { projectId });
  };

  const error = await errorOf(admin.action(api.connections.finishOAuth, { flow: completionToken(response) }));
  expect(error).toMatchObject({ code: "NOT_FOUND" });
  expect(fake().oauth.revoked).toHaveLength(1);
  expect(fake().oauth.liveTokensOf(fake().oauth.account)).toEqual([]);
  expect(await t.run((ctx) => ctx.db.query("connections").collect())).toEqual([]);
  expectNoSecrets(error, issued());
});
