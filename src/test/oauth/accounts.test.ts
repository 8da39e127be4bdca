// Google Analytics grants and the Google account behind them (oauth/accounts.ts). Google keeps one
// authorization per (Google account, OAuth client): revoking any token of it ends every token of that
// account, in every connection. The fake Google models that rule, so a naive revoke would break the
// connections these tests keep syncing. Accounts are stored only as keyed hashes; the account id never
// appears in a return value, log line or stored field (the fake lists it with the issued secrets).
import { createHash } from "node:crypto";
import { expect, test } from "vitest";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { errorOf, everythingStored, projectWithEveryRole } from "../helpers/api";
import { newBackend, type Backend } from "../helpers/convex";
import { GOOGLE_PATHS } from "../helpers/fakeProviders";
import { SECRETS, expectNoSecrets, useFakeProviders } from "../helpers/secrets";
import { oauthSteps } from "../helpers/oauthFlow";

const fake = useFakeProviders();
const { issued, connect, finish, connected, row, storedRefreshToken, syncOnce, drainRevocations, revocationOutcomes } = oauthSteps(fake);

const ACCOUNT_A = "100000000000000000001";
const ACCOUNT_B = "100000000000000000002";

async function accountHash(t: Backend, connectionId: Id<"connections">): Promise<string | undefined> {
  return (await row(t, connectionId))?.oauthAccountHash;
}

test("the authorization asks for openid; the account is stored only as a keyed hash, never the Google id", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const { authorizationUrl } = await connect(t, admin, projectId);
  expect(new URL(authorizationUrl).searchParams.get("scope")?.split(" ")).toEqual([
    "openid",
    "https://www.googleapis.com/auth/analytics.readonly",
  ]);
  const connectionId = await connected(t, admin, projectId);

  const hash = await accountHash(t, connectionId);
  expect(hash).toMatch(/^[0-9a-f]{64}$/);
  // Keyed: not a bare SHA-256 of the id, with or without the service.
  expect(hash).not.toBe(createHash("sha256").update(ACCOUNT_A).digest("hex"));
  expect(hash).not.toBe(createHash("sha256").update(`google_analytics:${ACCOUNT_A}`).digest("hex"));
  expectNoSecrets(await everythingStored(t), issued());
  expect(issued()).toContain(ACCOUNT_A);
});

test("the fake Google ends every token of an account when one is revoked (1 revocation ends 2 connections), not another account's", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const first = await connected(t, admin, projectId);
  const second = await connected(t, admin, projectId);
  fake().oauth.account = ACCOUNT_B;
  const other = await connected(t, admin, projectId);
  expect(fake().oauth.liveTokensOf(ACCOUNT_A)).toHaveLength(4);

  const response = await fetch(`${fake().url}${GOOGLE_PATHS.revoke}`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      token: (await storedRefreshToken(t, first))!,
      client_id: SECRETS.googleClientId,
      client_secret: SECRETS.googleClientSecret,
    }),
  });
  expect(response.status).toBe(200);
  expect(fake().oauth.liveTokensOf(ACCOUNT_A)).toEqual([]);
  expect((await syncOnce(t, second))?.status).toBe("needs_reauth");
  expect((await syncOnce(t, other))?.status).toBe("active");
});

test("reconnecting with the same Google account revokes nothing (0 revocations): the new token keeps syncing", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const connectionId = await connected(t, admin, projectId);
  const before = await accountHash(t, connectionId);

  const again = await connect(t, admin, projectId, { connectionId });
  expect(await finish(admin, again.response)).toBe(connectionId);
  await drainRevocations(t);

  expect(fake().oauth.revoked).toEqual([]);
  expect(await accountHash(t, connectionId)).toBe(before);
  expect((await syncOnce(t, connectionId))?.status).toBe("active");
  expect(fake().oauth.liveTokensOf(ACCOUNT_A).length).toBeGreaterThan(0);
});

test("reconnecting with another Google account revokes the previous account's grant (1 revocation); the new one keeps syncing", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const connectionId = await connected(t, admin, projectId);
  const previousRefresh = await storedRefreshToken(t, connectionId);
  const previousHash = await accountHash(t, connectionId);

  fake().oauth.account = ACCOUNT_B;
  const other = await connect(t, admin, projectId, { connectionId });
  await finish(admin, other.response);
  await drainRevocations(t);

  expect(fake().oauth.revoked).toEqual([previousRefresh]);
  expect(fake().oauth.liveTokensOf(ACCOUNT_A)).toEqual([]);
  expect(await accountHash(t, connectionId)).not.toBe(previousHash);
  expect((await syncOnce(t, connectionId))?.status).toBe("active");
  expect(await revocationOutcomes(t)).toEqual(["revoked"]);
  expectNoSecrets(await everythingStored(t), issued());
});

test("removing 1 of 2 connections of one Google account (2 projects) revokes nothing; removing the last revokes it (1 revocation)", async () => {
  const t = newBackend();
  const { projectId, admin, owner } = await projectWithEveryRole(t);
  const otherProject = await owner.mutation(api.projects.create, { name: "Side project" });
  const first = await connected(t, admin, projectId);
  const second = await connected(t, owner, otherProject);

  await admin.mutation(api.connections.remove, { connectionId: first });
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([]);
  expect(await revocationOutcomes(t)).toEqual(["not revoked: another connection may hold a grant of the same account"]);
  expect((await syncOnce(t, second))?.status).toBe("active");

  const lastRefresh = await storedRefreshToken(t, second);
  await owner.mutation(api.connections.remove, { connectionId: second });
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([lastRefresh]);
  expect(fake().oauth.liveTokensOf(ACCOUNT_A)).toEqual([]);
});

test("a finishOAuth failing after the exchange (LIMIT_REACHED) while another connection holds the account revokes nothing (0): it keeps syncing", async () => {
  const t = newBackend();
  const { projectId, admin, owner } = await projectWithEveryRole(t);
  const kept = await connected(t, admin, projectId);
  const { response } = await connect(t, admin, projectId);
  // The owner reaches the per-user cap of 100 connections (the kept one and 99 more) meanwhile.
  const otherProject = await owner.mutation(api.projects.create, { name: "Side project" });
  await t.run(async (ctx) => {
    for (let i = 0; i < 99; i++) {
      await ctx.db.insert("connections", {
        projectId: otherProject,
        service: "github",
        status: "active",
        healthScore: 100,
        createdAt: 0,
        updatedAt: 0,
      });
    }
  });

  expect(await errorOf(finish(admin, response))).toMatchObject({ code: "LIMIT_REACHED" });
  expect(fake().oauth.revoked).toEqual([]);
  expect((await syncOnce(t, kept))?.status).toBe("active");
});

test("a grant stored before accounts were recorded counts as possibly shared: 0 revocations while it exists, 1 when it is the last", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const legacy = await connected(t, admin, projectId);
  const known = await connected(t, admin, projectId);
  await t.run((ctx) => ctx.db.patch("connections", legacy, { oauthAccountHash: undefined }));

  // Reconnecting the legacy connection with another account: its old account is unknown, maybe this one.
  fake().oauth.account = ACCOUNT_B;
  const reconnect = await connect(t, admin, projectId, { connectionId: legacy });
  await finish(admin, reconnect.response);
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([]);
  await t.run((ctx) => ctx.db.patch("connections", legacy, { oauthAccountHash: undefined }));

  // Removing the known one: the unknown one may hold the same account.
  await admin.mutation(api.connections.remove, { connectionId: known });
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([]);
  expect((await syncOnce(t, legacy))?.status).toBe("active");

  // The unknown one, last grant of its service: revoked.
  const lastRefresh = await storedRefreshToken(t, legacy);
  await admin.mutation(api.connections.remove, { connectionId: legacy });
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([lastRefresh]);
});

test("an ID token without a usable sub stores no account (unknown, possibly shared): the connection works and removing it with 1 other grant left revokes nothing", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const known = await connected(t, admin, projectId);
  fake().oauth.account = "";
  const unknown = await connected(t, admin, projectId);

  expect(await accountHash(t, unknown)).toBeUndefined();
  expect((await syncOnce(t, unknown))?.status).toBe("active");
  await admin.mutation(api.connections.remove, { connectionId: unknown });
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([]);
  expect((await syncOnce(t, known))?.status).toBe("active");
});
