import { ConvexError } from "convex/values";
import { describe, expect, onTestFinished, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import crons from "../convex/crons";
import { DEFAULT_SYNC_INTERVAL_MINUTES, SYNC_GROUP_SIZE, nextSyncSlot } from "../convex/metricsSync";
import { identity, newBackend, type Backend } from "./helpers/convex";
import { HUGE_BODY_BYTES, type Mode } from "./helpers/fakeProviders";
import { MAX_RESPONSE_BYTES } from "../convex/providers/transport";
import { SECOND_MASTER_KEY } from "./helpers/keys";
import { seedConnection, seedProject } from "./helpers/seed";
import { SECRETS, expectNoSecrets, useFakeProviders } from "./helpers/secrets";

const fake = useFakeProviders();

const GITHUB = { token: SECRETS.githubToken, repository: SECRETS.githubRepository };

async function setup(t: Backend, service = "github", credentials: Record<string, string> = GITHUB) {
  const { projectId, userIds } = await seedProject(t, { alice: "member", bob: "owner" });
  const connectionId = await seedConnection(t, projectId, service, credentials);
  return { projectId, userIds, connectionId, alice: t.withIdentity(identity("alice")) };
}

function connection(t: Backend, connectionId: Id<"connections">) {
  return t.run(async (ctx) => (await ctx.db.get("connections", connectionId))!);
}

function metricsOf(t: Backend, connectionId: Id<"connections">) {
  return t.run((ctx) =>
    ctx.db
      .query("metrics")
      .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connectionId))
      .collect(),
  );
}

function auditOf(t: Backend, targetId: string) {
  return t.run((ctx) =>
    ctx.db
      .query("auditLog")
      .withIndex("by_targetId_and_at", (q) => q.eq("targetId", targetId))
      .collect(),
  );
}

async function errorOf(promise: Promise<unknown>): Promise<ConvexError<{ code: string; message: string }>> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConvexError);
  expectNoSecrets(error);
  return error as ConvexError<{ code: string; message: string }>;
}

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

  const failures: { mode: Mode; message: RegExp }[] = [
    { mode: 401, message: /GitHub rejected the credentials \(HTTP 401\)/ },
    { mode: 403, message: /GitHub rejected the credentials \(HTTP 403\)/ },
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
    const { projectId } = await connection(t, connectionId);
    const result = await t.action(internal.metricsSync.syncGroup, { projectId, connectionIds: [connectionId] });
    expect(fake().requests).toHaveLength(1);
    expect(result).toEqual([{ status: "pending", metricsStored: 0 }]);
    const row = await connection(t, connectionId);
    expect(row).toMatchObject({ status: "pending", healthScore: 100 });
    expect(row.lastError).toBeUndefined();
    // The next sync uses the new credentials.
    const next = await t.action(internal.metricsSync.syncGroup, { projectId, connectionIds: [connectionId] });
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
    expect(result).toEqual({ status: "error", metricsStored: 0, error: "Stripe rejected the credentials (HTTP 401)" });
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
    const audit = await auditOf(t, connectionId);
    expect(audit.map((entry) => entry.action)).toEqual(["connection.decryption_failed"]);
    expect(audit[0]?.detail).toBe("DECRYPTION_FAILED");
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

/**
 * Runs one cron run to completion under fake timers. Timers advance by 0 ms:
 * the run only uses runAfter(0), and vi.runAllTimers would also fire the
 * HTTP client's own connect timeout (10 s) while a real request is open.
 */
async function runCron(t: Backend, args: { groupsLeft?: number } = {}): Promise<void> {
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  await t.mutation(internal.metricsSync.scheduleDueSyncs, args);
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
}

const INTERVAL_MS = DEFAULT_SYNC_INTERVAL_MINUTES * 60_000;

/** Checks a synced row is next due at its project's slot, 0.5 to 1.5 intervals after its sync. */
function expectNextSlot(row: { projectId: Id<"projects">; lastSyncedAt?: number; nextSyncAt?: number }, intervalMs = INTERVAL_MS) {
  expect(row.nextSyncAt).toBe(nextSyncSlot(row.projectId, row.lastSyncedAt!, intervalMs));
  expect(row.nextSyncAt! - row.lastSyncedAt!).toBeGreaterThan(intervalMs / 2);
  expect(row.nextSyncAt! - row.lastSyncedAt!).toBeLessThanOrEqual(1.5 * intervalMs);
}

describe("sync cron", () => {
  test("runs every minute through metricsSync.scheduleDueSyncs", () => {
    const job = Object.values(crons.crons).find((cron) => cron.name === "metricsSync:scheduleDueSyncs");
    expect(job?.schedule).toEqual({ type: "interval", minutes: 1 });
    expect(job?.args).toEqual([{}]);
  });

  test("syncs every due connection once, a project's in groups of at most SYNC_GROUP_SIZE; paused ones are only rescheduled", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { owner: "owner" });
    const { projectId: otherProjectId } = await seedProject(t, { other: "owner" });
    const byStatus = { active: SYNC_GROUP_SIZE, pending: 2, error: 3, inactive: 2 };
    const ids: Record<string, Id<"connections">[]> = {};
    for (const [status, count] of Object.entries(byStatus)) {
      ids[status] = [];
      for (let i = 0; i < count; i++) {
        ids[status].push(await seedConnection(t, projectId, "github", GITHUB, status as keyof typeof byStatus));
      }
    }
    const other = await seedConnection(t, otherProjectId, "github", GITHUB, "active");

    await runCron(t);

    const synced = [...ids.active!, ...ids.pending!, ...ids.error!, other];
    expect(fake().requests).toHaveLength(synced.length);
    for (const id of synced) {
      expect(await metricsOf(t, id)).toHaveLength(4);
      const row = await connection(t, id);
      expect(row.status).toBe("active");
      expectNextSlot(row);
    }
    for (const id of ids.inactive!) {
      expect(await metricsOf(t, id)).toEqual([]);
      const row = await connection(t, id);
      expect(row.status).toBe("inactive");
      expect(row.nextSyncAt).toBeGreaterThan(Date.now() + INTERVAL_MS / 2);
    }
    const cronAudit = await auditOf(t, synced[0]!);
    expect(cronAudit).toHaveLength(1);
    expect(cronAudit[0]).toMatchObject({ action: "connection.credentials_decrypted", detail: "sync (cron)" });
    expect(cronAudit[0]?.actorId).toBeUndefined();

    // 30 due connections of one project: 2 groups (25 + 5); the other project: 1.
    const groups = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
    const sizes = groups
      .filter((job) => job.name.endsWith("syncGroup"))
      .map((job) => (job.args[0] as { connectionIds: unknown[] }).connectionIds.length)
      .sort((a, b) => a - b);
    expect(sizes).toEqual([1, 5, SYNC_GROUP_SIZE]);

    // Nothing is due again before the project's next slot; then all of it is.
    await runCron(t);
    expect(fake().requests).toHaveLength(synced.length);
    vi.setSystemTime(Date.now() + 1.5 * INTERVAL_MS);
    await runCron(t);
    expect(fake().requests).toHaveLength(2 * synced.length);
  });

  test("SYNC_INTERVAL_MINUTES sets the interval", async () => {
    vi.stubEnv("SYNC_INTERVAL_MINUTES", "60");
    onTestFinished(() => void vi.stubEnv("SYNC_INTERVAL_MINUTES", ""));
    const t = newBackend();
    const { connectionId } = await setup(t);
    await runCron(t);
    expectNextSlot(await connection(t, connectionId), 60 * 60_000);
  });

  test("a manual sync moves the next scheduled sync to the project's next slot", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    await alice.action(api.connections.syncMetrics, { connectionId });
    expectNextSlot(await connection(t, connectionId));

    await runCron(t);
    expect(fake().requests).toHaveLength(1);
  });

  test("a project's connections fall due together after their first sync, however they were created", async () => {
    const t = newBackend();
    const { connectionId: first, alice, projectId } = await setup(t);
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    await alice.action(api.connections.syncMetrics, { connectionId: first });
    vi.setSystemTime(Date.now() + 7 * 60_000);
    const second = await seedConnection(t, projectId, "github", GITHUB);
    await runCron(t); // syncs the new one only
    expect(fake().requests).toHaveLength(2);
    // Both are due on the project's slots (the same phase), at most one interval apart.
    const slots = [(await connection(t, first)).nextSyncAt!, (await connection(t, second)).nextSyncAt!];
    expect(Math.abs(slots[0]! - slots[1]!) % INTERVAL_MS).toBe(0);

    vi.setSystemTime(Math.max(...slots));
    await runCron(t);
    expect(fake().requests).toHaveLength(4);
    const groups = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
    expect(groups.filter((job) => job.name.endsWith("syncGroup")).map((job) => job.args[0])).toContainEqual({
      projectId,
      connectionIds: [first, second],
    });
    // From then on they stay together.
    expect((await connection(t, first)).nextSyncAt).toBe((await connection(t, second)).nextSyncAt);
  });

  test("created and updated connections are due at once", async () => {
    const t = newBackend();
    const { connectionId } = await setup(t);
    const bob = t.withIdentity(identity("bob"));
    await runCron(t);
    expect(fake().requests).toHaveLength(1);

    await bob.mutation(api.connections.updateCredentials, { connectionId, credentials: GITHUB });
    expect((await connection(t, connectionId)).nextSyncAt).toBe(Date.now());
    const { projectId } = await connection(t, connectionId);
    const created = await bob.mutation(api.connections.create, { projectId, service: "github", credentials: GITHUB });
    expect((await connection(t, created)).nextSyncAt).toBe(Date.now());
    await runCron(t);
    expect(fake().requests).toHaveLength(3);
  });

  test("a run starts at most groupsLeft groups; the rest stay due for the next run", async () => {
    const t = newBackend();
    const first = await setup(t);
    const second = await setup(t);

    await runCron(t, { groupsLeft: 1 });

    const rows = [await connection(t, first.connectionId), await connection(t, second.connectionId)];
    expect(rows.map((row) => row.status).sort()).toEqual(["active", "pending"]);
    await runCron(t);
    expect((await connection(t, second.connectionId)).status).toBe("active");
    expect((await connection(t, first.connectionId)).status).toBe("active");
    expect(fake().requests).toHaveLength(2);
  });

  test("a failing connection in a cron run is marked error and the others of its group still sync", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { owner: "owner" });
    const good = await seedConnection(t, projectId, "github", GITHUB, "active");
    const bad = await seedConnection(t, projectId, "github", { ...GITHUB, repository: "acme/missing" }, "active");

    await runCron(t);

    expect(await connection(t, good)).toMatchObject({ status: "active" });
    expect(await connection(t, bad)).toMatchObject({ status: "error", lastError: "GitHub did not find the requested resource (HTTP 404)" });
    expect(await metricsOf(t, good)).toHaveLength(4);
  });

  test("credentials that do not decrypt fail their connection only, audited; the group's others sync", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { owner: "owner" });
    const good = await seedConnection(t, projectId, "github", GITHUB, "active");
    const broken = await seedConnection(t, projectId, "github", GITHUB, "active");
    await t.run(async (ctx) => {
      const other = (await ctx.db.get("connections", good))!.encryptedCredentials;
      await ctx.db.patch("connections", broken, { encryptedCredentials: other }); // bound to another row
    });

    await runCron(t);

    expect(await connection(t, good)).toMatchObject({ status: "active" });
    expect(await connection(t, broken)).toMatchObject({ status: "error" });
    expect((await auditOf(t, broken)).map((entry) => entry.action)).toEqual(["connection.decryption_failed"]);
    expect(fake().requests).toHaveLength(1);
  });
});
