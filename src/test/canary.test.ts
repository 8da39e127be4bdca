// Canary secrets go through a whole session of dashboard and HTTP API use,
// including failures. None may appear in a return value, an error, console
// output or a stored document (the one exception: apiKeys.create returns the
// new key once, to its creator).
import { ConvexError } from "convex/values";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { everythingStored, projectWithEveryRole } from "./helpers/api";
import { newBackend } from "./helpers/convex";
import { startFakeProviders } from "./helpers/fakeProviders";
import { TEST_MASTER_KEY } from "./helpers/keys";
import { unregisteredSecretFields } from "./helpers/registryCheck";
import { SECRETS, useFakeProviderUrls } from "./helpers/secrets";

const CANARY = {
  stripe: "sk_live_CANARYstripe0000000000000001",
  stripeRotated: "rk_live_CANARYstripe0000000000000002",
  githubToken: "ghp_CANARYgithub00000000000000003",
  plausible: "CANARYplausible00000000000000004",
  openai: "sk-proj-CANARYopenai000000000000005",
  anthropic: "sk-ant-api03-CANARYanthropic00000006",
  googleClientSecret: "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",
};
const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;

let consoleSpies: ReturnType<typeof vi.spyOn>[];

beforeEach(() => {
  consoleSpies = CONSOLE_METHODS.map((method) => vi.spyOn(console, method));
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** A recorder of what calls returned or the errors they failed with, into `seen`; a failed call gives undefined. */
function observer(seen: unknown[]) {
  return async function observe<T>(call: Promise<T>): Promise<T | undefined> {
    try {
      const result = await call;
      seen.push(result);
      return result;
    } catch (error) {
      seen.push(error instanceof ConvexError ? error.data : String(error), (error as Error).message);
      return undefined;
    }
  };
}

test("canary secrets never leave the backend", async () => {
  const t = newBackend();
  const { projectId, owner, admin, member } = await projectWithEveryRole(t);
  const seen: unknown[] = [];
  const observe = observer(seen);

  // Connections, including invalid input carrying the canaries.
  const stripeId = await observe(
    admin.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: CANARY.stripe } }),
  );
  if (!stripeId) throw new Error("connection not created");
  await observe(
    admin.mutation(api.connections.create, {
      projectId,
      service: "github",
      credentials: { token: CANARY.githubToken, repository: "acme/widgets" },
    }),
  );
  await observe(admin.mutation(api.connections.create, { projectId, service: "github", credentials: { token: CANARY.githubToken } }));
  await observe(
    admin.mutation(api.connections.create, { projectId, service: "plausible", credentials: { apiKey: CANARY.plausible, x: "y" } }),
  );
  await observe(admin.mutation(api.connections.create, { projectId, service: "nosuch", credentials: { key: CANARY.stripe } }));
  await observe(member.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: CANARY.stripe } }));
  await observe(admin.mutation(api.connections.updateCredentials, { connectionId: stripeId, credentials: { secretKey: CANARY.stripeRotated } }));
  await observe(admin.mutation(api.connections.updateCredentials, { connectionId: stripeId, credentials: { token: CANARY.stripe } }));
  await observe(member.query(api.connections.list, { projectId }));
  await observe(member.query(api.connections.get, { connectionId: stripeId }));
  vi.stubEnv("MASTER_ENCRYPTION_KEY", "");
  await observe(admin.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: CANARY.stripe } }));
  vi.stubEnv("MASTER_ENCRYPTION_KEY", TEST_MASTER_KEY);

  // AI keys, including a key for the wrong provider.
  await observe(owner.mutation(api.aiKeys.set, { provider: "openai", apiKey: CANARY.openai }));
  await observe(owner.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: CANARY.openai }));
  await observe(owner.mutation(api.aiKeys.set, { provider: "openai", apiKey: `${CANARY.openai} trailing words` }));
  await observe(owner.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: CANARY.anthropic }));
  await observe(owner.query(api.aiKeys.get, {}));

  // API keys and the HTTP API.
  const created = await admin.mutation(api.apiKeys.create, { projectId, name: "CI" });
  const apiKey = created.apiKey;
  await observe(member.query(api.apiKeys.list, { projectId }));
  for (const authorization of [`Bearer ${apiKey}`, `Bearer ${apiKey}x`, "Bearer dt_live_nope"]) {
    const response = await t.fetch("/api/v1/projects/metrics", { headers: { Authorization: authorization } });
    seen.push(response.status, await response.text(), [...response.headers.entries()]);
  }
  await observe(admin.mutation(api.apiKeys.revoke, { apiKeyId: created.apiKeyId }));
  const revoked = await t.fetch("/api/v1/projects/metrics", { headers: { Authorization: `Bearer ${apiKey}` } });
  seen.push(revoked.status, await revoked.text());

  // Reading everything back, then removing.
  await observe(member.query(api.auditLog.list, { projectId, paginationOpts: { numItems: 100, cursor: null } }));
  await observe(member.query(api.projects.members, { projectId }));
  await observe(member.query(api.projects.list, {}));
  await observe(admin.mutation(api.connections.remove, { connectionId: stripeId }));
  await observe(owner.mutation(api.aiKeys.remove, {}));

  const secrets = [...Object.values(CANARY), apiKey, TEST_MASTER_KEY];
  const returned = JSON.stringify(seen);
  const logged = JSON.stringify(consoleSpies.flatMap((spy) => spy.mock.calls));
  const stored = await everythingStored(t);
  expect(seen.length).toBeGreaterThan(25);
  for (const secret of secrets) {
    expect(returned).not.toContain(secret);
    expect(logged).not.toContain(secret);
    expect(stored).not.toContain(secret);
  }
  // The canaries' tails are in the hints, so the check above did see real data.
  expect(returned).toContain("rk_live_…0002");
  // Every ciphertext- or hash-shaped value this session stored is in a field the registry of stored secrets lists.
  expect(await unregisteredSecretFields(t)).toEqual([]);
});

test("OAuth canaries (client secret, codes, PKCE verifier, access and refresh tokens) never leave the backend", async () => {
  // The fake Google issues the codes and tokens; a refused refresh and a bad code get error bodies quoting them.
  const fake = await startFakeProviders({ ...SECRETS, googleClientSecret: CANARY.googleClientSecret });
  try {
    useFakeProviderUrls(fake.url);
    vi.stubEnv("GOOGLE_OAUTH_CLIENT_SECRET", CANARY.googleClientSecret);
    const t = newBackend();
    const { projectId, admin, member } = await projectWithEveryRole(t);
    const seen: unknown[] = [];
    const observe = observer(seen);
    /** The callback, then finishOAuth as the admin who started the flow (as the dashboard does); the connection id. */
    async function callback(path: string): Promise<string | null> {
      const response = await t.fetch(path);
      seen.push(response.status, await response.text(), [...response.headers.entries()]);
      const flow = new URL(response.headers.get("Location") ?? "https://none.test").searchParams.get("flow");
      if (!flow) return null;
      return (await observe(admin.action(api.connections.finishOAuth, { flow })))?.connectionId ?? null;
    }
    const settings = { propertyId: SECRETS.gaPropertyId };
    const start = () => observe(admin.mutation(api.connections.startOAuth, { projectId, service: "google_analytics", settings }));

    // A code that fails to exchange (the fake echoes it), then a good connection with a short-lived token.
    const failing = fake.oauth.authorize((await start())!.authorizationUrl);
    await callback(failing.callbackPath.replace(encodeURIComponent(failing.code), encodeURIComponent(`${failing.code}X`)));
    fake.oauth.accessTokenLifetimeSeconds = 60;
    const connectionId = (await callback(fake.oauth.authorize((await start())!.authorizationUrl).callbackPath)) as Id<"connections">;
    expect(connectionId).toBeTruthy();
    await observe(member.query(api.connections.list, { projectId }));
    // A refresh with rotation, then a dead grant (invalid_grant echoing the refresh token), then a reconnect.
    await observe(member.action(api.connections.syncMetrics, { connectionId }));
    fake.oauth.accessTokenLifetimeSeconds = 60;
    await observe(t.action(internal.sync.run.syncGroup, { connectionIds: [connectionId] }));
    fake.oauth.revokeEverything();
    await observe(t.action(internal.sync.run.syncGroup, { connectionIds: [connectionId] }));
    await observe(member.query(api.connections.get, { connectionId }));
    const reconnect = await observe(
      admin.mutation(api.connections.startOAuth, { projectId, service: "google_analytics", settings, connectionId }),
    );
    // A pending flow holds its encrypted PKCE verifier: a registered field.
    expect(await unregisteredSecretFields(t)).toEqual([]);
    await callback(fake.oauth.authorize(reconnect!.authorizationUrl).callbackPath);
    await observe(member.query(api.auditLog.list, { projectId, paginationOpts: { numItems: 100, cursor: null } }));
    await observe(admin.mutation(api.connections.remove, { connectionId }));
    // The removed connection's tokens wait in oauthRevocations: a registered field.
    expect(await unregisteredSecretFields(t)).toEqual([]);
    // The revocation is due revocationDelayMs later: run it now, as the scheduler then will.
    for (const { _id } of await t.run((ctx) => ctx.db.query("oauthRevocations").collect())) {
      await observe(t.action(internal.oauth.revocation.revokeGrant, { revocationId: _id }));
    }

    const verifiers = fake.requests
      .map((request) => new URLSearchParams(request.body).get("code_verifier"))
      .filter((verifier): verifier is string => verifier !== null);
    expect(verifiers.length).toBe(3);
    expect(fake.oauth.revoked).toHaveLength(1);
    expect(fake.requests.filter((request) => request.route === "ga4.runReport").length).toBeGreaterThan(0);
    const secrets = [CANARY.googleClientSecret, ...fake.oauth.issued, `${failing.code}X`, ...verifiers];
    expect(secrets.length).toBeGreaterThan(8);
    const returned = JSON.stringify(seen);
    const logged = JSON.stringify(consoleSpies.flatMap((spy) => spy.mock.calls));
    const stored = await everythingStored(t);
    for (const secret of secrets) {
      expect(returned).not.toContain(secret);
      expect(logged).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
    // The hints are there, so the checks above saw real data.
    expect(returned).toContain("Google account connected");
    expect(await unregisteredSecretFields(t)).toEqual([]);
  } finally {
    await fake.close();
  }
});
