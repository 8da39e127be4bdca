// Google Analytics 4 over OAuth 2.0 against the loopback fake Google. OAuth ciphertexts and the master key: versions bound in the AAD, rotation of tokens, flows and revocations that predate a rotation.
// Tokens, codes, the PKCE verifier and the client secret must never appear in a return value, URL, log,
// error or stored non-ciphertext field (the console is checked after every test by useFakeProviders).
import { expect, test, vi } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import { errorOf, projectWithEveryRole } from "../helpers/api";
import { newBackend } from "../helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "../helpers/keys";
import { useFakeProviders } from "../helpers/secrets";
import { SERVICE, SETTINGS, oauthSteps } from "../helpers/oauthFlow";

const fake = useFakeProviders();
const { tokenRequests, connected, row, storedCredentials, storedRefreshToken, syncOnce } = oauthSteps(fake);

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
  expect(status).toMatchObject({
    job: { status: "done" },
    safeToRemoveOldKey: true,
  });

  const after = await row(t, connectionId);
  expect(after?.encryptedCredentials).not.toBe(before?.encryptedCredentials);
  expect(after?.secretVersion).toBe(before?.secretVersion);
  expect(after?.credentialHints).toEqual(before?.credentialHints);
  vi.stubEnv("OLD_MASTER_KEY", "");
  expect(await storedRefreshToken(t, connectionId)).toBe(refreshToken);
  expect(await syncOnce(t, connectionId)).toEqual({
    status: "active",
    metricsStored: 3,
  });
  expect(tokenRequests("refresh_token")).toHaveLength(1);
});

test("safeToRemoveOldKey waits for sign-ins and revocations that predate the rotation (their ciphertexts are not rotated)", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  // A sign-in in progress (its verifier under the old key) and a revocation waiting for its action.
  await admin.mutation(api.connections.startOAuth, {
    projectId,
    service: SERVICE,
    settings: SETTINGS,
  });
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
