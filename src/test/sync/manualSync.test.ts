import { describe, expect, test, vi } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import { NOT_SCHEDULED } from "../../convex/sync/policy";
import { MAX_RESPONSE_BYTES } from "../../convex/providers/transport";
import { HUGE_BODY_BYTES, type Mode } from "../helpers/fakeProviders";
import { identity, newBackend } from "../helpers/convex";
import { SECOND_MASTER_KEY } from "../helpers/keys";
import { seedConnection, seedProject } from "../helpers/seed";
import { SECRETS, expectNoSecrets, useFakeProviders } from "../helpers/secrets";
import { GITHUB, auditOf, connection, errorOf, metricsOf, runCron, setup } from "../helpers/syncRows";

const fake = useFakeProviders();

describe("connections.syncMetrics", () => {
  test("GitHub: sends the decrypted token with GitHub's headers and stores stars, forks, issues, watchers", async () => {
    const t = newBackend();
    const { connectionId, alice, userIds, projectId } = await setup(t);

    const result = await alice.action(api.connections.syncMetrics, { connectionId });

    expect(result).toEqual({ status: "active", metricsStored: 4 });
    const [request] = fake().requests;
    expect(request?.path).toBe("/repos/acme/widgets");
    expect(request?.headers.authorization).toBe(`Bearer ${SECRETS.githubToken}`);
    expect(request?.headers.accept).toBe("application/vnd.github+json");
    expect(request?.headers["x-github-api-version"]).toBe("2022-11-28");
    expect(request?.headers["user-agent"]).toBeTruthy();

    const metrics = await metricsOf(t, connectionId);
    expect(Object.fromEntries(metrics.map((m) => [m.name, m.value]))).toEqual({
      stars: fake().values.github.stars,
      forks: fake().values.github.forks,
      open_issues: fake().values.github.openIssues,
      watchers: fake().values.github.watchers,
    });
    expect(new Set(metrics.map((m) => m.projectId))).toEqual(new Set([projectId]));
    const row = await connection(t, connectionId);
    expect(row).toMatchObject({ status: "active", healthScore: 100 });
    expect(row.lastError).toBeUndefined();
    expect(row.lastSyncedAt).toBe(metrics[0]?.timestamp);

    const audit = await auditOf(t, connectionId);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: "connection.credentials_decrypted", actorId: userIds.alice, projectId });
    expectNoSecrets(audit);
  });

  test("Stripe: Bearer secret key on GET /v1/balance; one point per bucket and currency, in minor units; MRR", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t, "stripe", { secretKey: SECRETS.stripeKey });

    expect(await alice.action(api.connections.syncMetrics, { connectionId })).toEqual({ status: "active", metricsStored: 6 });

    expect(fake().requests[0]).toMatchObject({ method: "GET", path: "/v1/balance" });
    expect(fake().requests[0]?.headers.authorization).toBe(`Bearer ${SECRETS.stripeKey}`);
    const metrics = await metricsOf(t, connectionId);
    expect(Object.fromEntries(metrics.map((m) => [m.name, m.value]))).toEqual({
      "balance.available.usd": 1_234_567,
      "balance.available.eur": 50_000,
      "balance.pending.usd": 78_900,
      // stripeMrr.test.ts covers the normalisation
      "mrr.usd": 3000,
      "mrr.eur": 1000,
      "subscriptions.active": 3,
    });
  });

  test("Plausible: Stats API v2 query for the site over the last 24 hours", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t, "plausible", {
      apiKey: SECRETS.plausibleKey,
      siteId: SECRETS.plausibleSiteId,
    });
    const before = Date.now();

    expect(await alice.action(api.connections.syncMetrics, { connectionId })).toEqual({ status: "active", metricsStored: 2 });

    const request = fake().requests[0]!;
    expect(request).toMatchObject({ method: "POST", path: "/api/v2/query" });
    expect(request.headers.authorization).toBe(`Bearer ${SECRETS.plausibleKey}`);
    const query = JSON.parse(request.body) as { site_id: string; metrics: string[]; date_range: [string, string] };
    expect(query.site_id).toBe(SECRETS.plausibleSiteId);
    const [from, to] = query.date_range.map((date) => Date.parse(date));
    expect(to! - from!).toBe(24 * 60 * 60 * 1000);
    expect(to).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    const metrics = await metricsOf(t, connectionId);
    expect(Object.fromEntries(metrics.map((m) => [m.name, m.value]))).toEqual({
      visitors: fake().values.plausible.visitors,
      pageviews: fake().values.plausible.pageviews,
    });
  });

  test.each([401, 403] as const)(
    "provider failure %s: needs_reauth (the user must update the credentials), never due again, audited",
    async (mode) => {
      const t = newBackend();
      const { connectionId, alice } = await setup(t);
      fake().setMode("github.repo", mode);
      const result = await alice.action(api.connections.syncMetrics, { connectionId });

      expect(result).toEqual({
        status: "needs_reauth",
        metricsStored: 0,
        error: `GitHub rejected the credentials (HTTP ${mode}); syncing is paused until the credentials are updated`,
      });
      const row = await connection(t, connectionId);
      expect(row).toMatchObject({ status: "needs_reauth", lastError: result.error, nextSyncAt: NOT_SCHEDULED });
      expect((await auditOf(t, connectionId)).map((entry) => entry.action)).toEqual([
        "connection.credentials_decrypted",
        "connection.needs_reauth",
      ]);
      // A manual sync does not ask the provider again; the cron never picks it.
      expect((await alice.action(api.connections.syncMetrics, { connectionId })).status).toBe("needs_reauth");
      await runCron(t);
      expect(fake().requests).toHaveLength(1);
    },
  );

  const failures: { mode: Mode; message: RegExp }[] = [
    { mode: 404, message: /GitHub did not find/ },
    { mode: 429, message: /GitHub is rate limiting requests/ },
    { mode: 500, message: /GitHub is unavailable \(HTTP 500\)/ },
    { mode: "slow", message: /GitHub did not answer in time/ },
    { mode: "invalid_json", message: /GitHub sent an unexpected response/ },
    { mode: "wrong_shape", message: /GitHub sent an unexpected response/ },
    { mode: "redirect", message: /GitHub redirected the request elsewhere \(not followed\) \(HTTP 307\)/ },
  ];
  test.each(failures)("provider failure $mode: status error, safe lastError, lower health, old metrics kept", async ({ mode, message }) => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    await alice.action(api.connections.syncMetrics, { connectionId });
    const synced = await connection(t, connectionId);
    const metricsBefore = await metricsOf(t, connectionId);

    fake().setMode("github.repo", mode);
    const result = await alice.action(api.connections.syncMetrics, { connectionId });

    expect(result.status).toBe("error");
    expect(result.metricsStored).toBe(0);
    expect(result.error).toMatch(message);
    expectNoSecrets(result);
    const row = await connection(t, connectionId);
    expect(row.status).toBe("error");
    expect(row.lastError).toBe(result.error);
    expect(row.healthScore).toBeLessThan(synced.healthScore);
    expect(row.lastSyncedAt).toBe(synced.lastSyncedAt);
    expect(await metricsOf(t, connectionId)).toEqual(metricsBefore);
    const audit = await auditOf(t, connectionId);
    expect(audit.map((entry) => entry.action)).toEqual([
      "connection.credentials_decrypted",
      "connection.credentials_decrypted",
    ]);
    // Each decryption is audited before the provider is called, whatever the provider then answers.
    expect(audit[1]?.detail).toBe("sync");
  });

  test("a sync that ran with replaced credentials does not judge the new ones", async () => {
    const t = newBackend();
    const { connectionId } = await setup(t, "github", { token: "ghp_RevokedOldToken000000000000000000000", repository: GITHUB.repository });
    const bob = t.withIdentity(identity("bob"));
    const realFetch = globalThis.fetch;
    // The owner saves good credentials while the sync's request (with the old, refused token) is in flight.
    vi.spyOn(globalThis, "fetch").mockImplementationOnce(async (input, init) => {
      await bob.mutation(api.connections.updateCredentials, { connectionId, credentials: GITHUB });
      return realFetch(input, init);
    });
    const result = await t.action(internal.sync.run.syncGroup, { connectionIds: [connectionId] });
    expect(fake().requests).toHaveLength(1);
    expect(result).toEqual([{ status: "pending", metricsStored: 0 }]);
    const row = await connection(t, connectionId);
    expect(row).toMatchObject({ status: "pending", healthScore: 100 });
    expect(row.lastError).toBeUndefined();
    // The next sync uses the new credentials.
    const next = await t.action(internal.sync.run.syncGroup, { connectionIds: [connectionId] });
    expect(next).toMatchObject([{ status: "active" }]);
  });

  test.each(["huge", "huge_declared"] as const)(
    "a %s provider body is refused at the cap, without reading the rest",
    async (mode) => {
      const t = newBackend();
      const { connectionId, alice } = await setup(t);
      fake().setMode("github.repo", mode);

      const result = await alice.action(api.connections.syncMetrics, { connectionId });

      expect(result).toEqual({ status: "error", metricsStored: 0, error: "GitHub sent an unexpected response (HTTP 200)" });
      // The server writes only as fast as the client reads: what it got out is the cap plus socket buffers.
      const sent = fake().hugeBytesSent();
      expect(sent).toBeLessThan(HUGE_BODY_BYTES / 3);
      if (mode === "huge") expect(sent).toBeGreaterThan(MAX_RESPONSE_BYTES);
    },
  );

  test("a redirect is never followed, so the credentials go to the configured host only", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    fake().setMode("github.repo", "redirect");
    const result = await alice.action(api.connections.syncMetrics, { connectionId });
    expect(result.status).toBe("error");
    expect(fake().requests.map((request) => request.path)).toEqual([`/repos/${SECRETS.githubRepository}`]);
  });

  test("a provider that echoes the key in its 401 body never gets it into lastError or the result", async () => {
    const t = newBackend();
    const wrongKey = "sk_test_51WrongStripeKeyThatTheFakeWillEcho00000000009999";
    const { connectionId, alice } = await setup(t, "stripe", { secretKey: wrongKey });

    const result = await alice.action(api.connections.syncMetrics, { connectionId });

    expect(fake().requests[0]?.headers.authorization).toBe(`Bearer ${wrongKey}`);
    expect(result).toEqual({
      status: "needs_reauth",
      metricsStored: 0,
      error: "Stripe rejected the credentials (HTTP 401); syncing is paused until the credentials are updated",
    });
    expect(JSON.stringify(await connection(t, connectionId))).not.toContain(wrongKey);
  });

  test("a successful sync after failures restores status active, clears lastError and raises health", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    fake().setMode("github.repo", 500);
    await alice.action(api.connections.syncMetrics, { connectionId });
    await alice.action(api.connections.syncMetrics, { connectionId });
    const failed = await connection(t, connectionId);
    expect(failed).toMatchObject({ status: "error", healthScore: 49 });

    fake().setMode("github.repo", "ok");
    fake().values.github.stars = 5000;
    expect(await alice.action(api.connections.syncMetrics, { connectionId })).toEqual({ status: "active", metricsStored: 4 });

    const row = await connection(t, connectionId);
    expect(row.status).toBe("active");
    expect(row.lastError).toBeUndefined();
    expect(row.healthScore).toBeGreaterThan(failed.healthScore);
    expect((await metricsOf(t, connectionId)).find((m) => m.name === "stars")?.value).toBe(5000);
  });

  test("non-members, unauthenticated callers and unknown connections are refused before any decryption", async () => {
    const t = newBackend();
    const { connectionId } = await setup(t);
    await seedProject(t, { mallory: "owner" });
    const { projectId: otherProjectId } = await seedProject(t, { carol: "owner" });
    const removedId = await seedConnection(t, otherProjectId, "github", GITHUB);
    await t.run((ctx) => ctx.db.delete("connections", removedId));

    expect((await errorOf(t.action(api.connections.syncMetrics, { connectionId }))).data.code).toBe("UNAUTHENTICATED");
    const mallory = t.withIdentity(identity("mallory"));
    expect((await errorOf(mallory.action(api.connections.syncMetrics, { connectionId }))).data.code).toBe("FORBIDDEN");
    const stranger = t.withIdentity(identity("stranger"));
    expect((await errorOf(stranger.action(api.connections.syncMetrics, { connectionId }))).data.code).toBe("FORBIDDEN");
    const alice = t.withIdentity(identity("alice"));
    expect((await errorOf(alice.action(api.connections.syncMetrics, { connectionId: removedId }))).data.code).toBe("NOT_FOUND");

    expect(fake().requests).toEqual([]);
    expect(await auditOf(t, connectionId)).toEqual([]);
    expect((await connection(t, connectionId)).status).toBe("pending");
  });

  test("credentials that do not decrypt: DECRYPTION_FAILED, audited, connection marked, provider never called", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY); // the key that encrypted them is gone

    const error = await errorOf(alice.action(api.connections.syncMetrics, { connectionId }));

    expect(error.data.code).toBe("DECRYPTION_FAILED");
    expect(fake().requests).toEqual([]);
    // Audited before decryption was tried, then the failure.
    const audit = await auditOf(t, connectionId);
    expect(audit.map((entry) => entry.action)).toEqual(["connection.credentials_decrypted", "connection.decryption_failed"]);
    expect(audit[1]?.detail).toBe("DECRYPTION_FAILED");
    const row = await connection(t, connectionId);
    expect(row.status).toBe("error");
    expect(row.lastError).toMatch(/could not be decrypted/);
  });

  test("an inactive (paused) connection is not synced", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    await t.run((ctx) => ctx.db.patch("connections", connectionId, { status: "inactive" }));

    expect(await alice.action(api.connections.syncMetrics, { connectionId })).toEqual({ status: "inactive", metricsStored: 0 });
    expect(fake().requests).toEqual([]);
    expect(await auditOf(t, connectionId)).toEqual([]);
  });
});

