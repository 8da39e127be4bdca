// The OAuth tests' shared steps (src/test/oauth/): the user's round trip
// through the fake Google (startOAuth, consent, callback, finishOAuth), and
// reading back what a connection stores.
import { expect } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { decryptCredentials, loadKeyring, readRootSalt } from "../../convex/storedSecrets/encryption";
import type { Caller } from "./api";
import type { Backend } from "./convex";
import type { FakeProviders } from "./fakeProviders";
import { LEGACY_READ } from "./legacy";
import { SECRETS, TEST_DASHBOARD_URL, expectNoSecrets } from "./secrets";

export const SERVICE = "google_analytics";
export const SETTINGS = { propertyId: SECRETS.gaPropertyId };

/** The OAuth steps bound to one test file's fake providers (useFakeProviders). */
export function oauthSteps(fake: () => FakeProviders) {
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
    const { connectionId } = await caller.action(api.connections.finishOAuth, {
      flow: completionToken(response),
    });
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
    const [result] = await t.action(internal.sync.run.syncGroup, {
      connectionIds: [connectionId],
    });
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

  /**
   * Runs the queued revocations (oauthRevocations) as the scheduler does once their delay
   * (revocationDelayMs, over a minute) has passed: each row's revokeGrant action, now. The scheduled
   * call that fires later finds its row gone and does nothing.
   */
  async function drainRevocations(t: Backend): Promise<void> {
    await t.finishInProgressScheduledFunctions();
    for (const { _id } of await t.run((ctx) => ctx.db.query("oauthRevocations").collect())) {
      await t.action(internal.oauth.revocation.revokeGrant, { revocationId: _id });
    }
  }

  /** The details of the connection.tokens_revoked audit entries, oldest first. */
  async function revocationOutcomes(t: Backend): Promise<(string | undefined)[]> {
    const entries = await t.run((ctx) => ctx.db.query("auditLog").collect());
    return entries.filter((entry) => entry.action === "connection.tokens_revoked").map((entry) => entry.detail);
  }

  return {
    issued,
    tokenRequests,
    redirectTarget,
    connect,
    completionToken,
    finish,
    connected,
    row,
    auditActions,
    keyring,
    storedCredentials,
    storedRefreshToken,
    syncOnce,
    gaMetrics,
    drainRevocations,
    revocationOutcomes,
  };
}
