// Google Analytics 4 over OAuth 2.0 against the loopback fake Google. Revocation when a connection is removed.
// Tokens, codes, the PKCE verifier and the client secret must never appear in a return value, URL, log,
// error or stored non-ciphertext field (the console is checked after every test by useFakeProviders).
import { expect, test } from "vitest";
import { api } from "../../convex/_generated/api";
import { everythingStored, projectWithEveryRole } from "../helpers/api";
import { newBackend } from "../helpers/convex";
import { expectNoSecrets, useFakeProviders } from "../helpers/secrets";
import { oauthSteps } from "../helpers/oauthFlow";
import { revocationDelayMs } from "../../convex/oauth/revocation";

const fake = useFakeProviders();
const { issued, connected, row, auditActions, storedRefreshToken, drainRevocations } = oauthSteps(fake);

test("removing an OAuth connection revokes the grant at Google and deletes the tokens", async () => {
  const t = newBackend();
  const { projectId, admin } = await projectWithEveryRole(t);
  const connectionId = await connected(t, admin, projectId);
  const refreshToken = await storedRefreshToken(t, connectionId);

  await admin.mutation(api.connections.remove, { connectionId });
  expect(await row(t, connectionId)).toBeNull();
  // Queued to run after revocationDelayMs (2 x the provider timeout + 60 s: 80 s by default, 62 s with the
  // tests' 1 s timeout), not at once: a sign-in of the same account exchanging its code meanwhile is then
  // visible when it decides.
  const scheduled = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
  const revoke = scheduled.find((call) => call.name.includes("revokeGrant"));
  const [queued] = await t.run((ctx) => ctx.db.query("oauthRevocations").collect());
  // Measured from the row's createdAt (Date.now() in the removal, before it scheduled the call).
  expect(revoke && queued && revoke.scheduledTime - queued.createdAt).toBeGreaterThanOrEqual(revocationDelayMs());
  expect(revocationDelayMs()).toBe(62_000);
  expect(fake().oauth.revoked).toEqual([]);
  await drainRevocations(t);

  expect(fake().oauth.revoked).toEqual([refreshToken]);
  expect(fake().oauth.liveRefreshTokens.has(refreshToken!)).toBe(false);
  expect(await t.run((ctx) => ctx.db.query("oauthRevocations").collect())).toEqual([]);
  expect(await auditActions(t, connectionId)).toContain("connection.tokens_revoked");
  const entries = await t.run((ctx) => ctx.db.query("auditLog").collect());
  expect(entries.find((entry) => entry.action === "connection.tokens_revoked")?.detail).toBe("revoked");
  expectNoSecrets(await everythingStored(t), issued());
});
