// The account-aware revocation (oauth/accounts.ts) against sign-ins in progress and quick account
// switches, and the ID token claims that must match before a token names an account. The fake Google
// ends every token of an account on one revocation, so a revocation that should have waited breaks the
// connection the test then syncs.
import { expect, test } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import { PENDING_GRANT_MS } from "../../convex/oauth/accounts";
import { projectWithEveryRole, userIdOf } from "../helpers/api";
import { newBackend } from "../helpers/convex";
import { SECRETS, useFakeProviders } from "../helpers/secrets";
import { oauthSteps } from "../helpers/oauthFlow";

const fake = useFakeProviders();
const { connect, finish, connected, row, storedRefreshToken, syncOnce, drainRevocations, revocationOutcomes } = oauthSteps(fake);

const ACCOUNT_A = "100000000000000000001";
const ACCOUNT_B = "100000000000000000002";

test("a removal while another project's sign-in of the same account exchanges its code: the revocation waits, then keeps the grant (0 revocations)", async () => {
  const t = newBackend();
  const { projectId, admin, owner } = await projectWithEveryRole(t);
  const sideProject = await owner.mutation(api.projects.create, { name: "Side project" });
  const old = await connected(t, owner, sideProject);

  const { response } = await connect(t, admin, projectId);
  fake().oauth.beforeTokenAnswer = async (grantType) => {
    if (grantType !== "authorization_code") return;
    fake().oauth.beforeTokenAnswer = undefined;
    // During the exchange: the other connection of the same account is removed (its revocation is queued).
    await owner.mutation(api.connections.remove, { connectionId: old });
    await t.finishInProgressScheduledFunctions();
  };
  const connectionId = await finish(admin, response);
  expect(fake().oauth.revoked).toEqual([]);
  await drainRevocations(t);

  expect(fake().oauth.revoked).toEqual([]);
  expect(await revocationOutcomes(t)).toEqual(["not revoked: another connection may hold a grant of the same account"]);
  expect((await syncOnce(t, connectionId))?.status).toBe("active");
});

test(`a row still being connected holds its account for ${PENDING_GRANT_MS / 60_000} minutes (0 revocations), then nothing (1)`, async () => {
  const t = newBackend();
  const { projectId, owner } = await projectWithEveryRole(t);
  const sideProject = await owner.mutation(api.projects.create, { name: "Side project" });
  const first = await connected(t, owner, sideProject);
  const oauthAccountHash = (await row(t, first))!.oauthAccountHash!;
  // What finishOAuth leaves between inserting its row (with the account's hash) and storing the grant.
  const pending = await t.mutation(internal.connections.insertOAuthConnection, {
    projectId,
    userId: await userIdOf(t, "alice"),
    service: "google_analytics",
    name: "GA",
    credentialHints: {},
    oauthAccountHash,
  });
  expect((await row(t, pending))?.encryptedCredentials).toBeUndefined();

  await owner.mutation(api.connections.remove, { connectionId: first });
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([]);

  // Later, the same account connected and removed again, with the pending row now older than that.
  const second = await connected(t, owner, sideProject);
  await t.run((ctx) => ctx.db.patch("connections", pending, { createdAt: Date.now() - PENDING_GRANT_MS - 1 }));
  const lastRefresh = await storedRefreshToken(t, second);
  await owner.mutation(api.connections.remove, { connectionId: second });
  await drainRevocations(t);
  expect(fake().oauth.revoked).toEqual([lastRefresh]);
});

test("switching A -> B -> A before the revocations run revokes only B's grant (1); the connection keeps A's and syncs", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const connectionId = await connected(t, admin, projectId);
  fake().oauth.account = ACCOUNT_B;
  await finish(admin, (await connect(t, admin, projectId, { connectionId })).response);
  const refreshOfB = await storedRefreshToken(t, connectionId);
  fake().oauth.account = ACCOUNT_A;
  await finish(admin, (await connect(t, admin, projectId, { connectionId })).response);
  await drainRevocations(t);

  expect(fake().oauth.revoked).toEqual([refreshOfB]);
  expect(fake().oauth.liveTokensOf(ACCOUNT_B)).toEqual([]);
  expect((await syncOnce(t, connectionId))?.status).toBe("active");
});

test.each([
  ["another client's audience", { aud: "someone-else.apps.googleusercontent.com" }],
  ["another issuer", { iss: "https://evil.example" }],
  ["no issuer", { iss: undefined }],
])("an ID token with %s names no account: the row stores no hash", async (_, claims) => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  fake().oauth.idTokenClaims = claims;
  const connectionId = await connected(t, admin, projectId);
  expect((await row(t, connectionId))?.oauthAccountHash).toBeUndefined();
  fake().oauth.idTokenClaims = { aud: [SECRETS.googleClientId, "another"] };
  const listed = await connected(t, admin, projectId);
  expect((await row(t, listed))?.oauthAccountHash).toMatch(/^[0-9a-f]{64}$/);
});
