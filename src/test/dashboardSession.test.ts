// A dashboard session end to end, as the dashboard's repository drives it,
// on the cold harness (a fresh module graph per function execution, every
// execution counted) with Convex's transaction limits enforced: sign in,
// create a project, connect Stripe, GitHub and Google Analytics (OAuth),
// sync, read metrics.latest and a 90-day metrics.series (documents read
// counted in the query's own transaction), generate and list an insight,
// pause a connection (no sync, no function call for it in the next cycles),
// remove the project (no row of it left, the OAuth grant revoked).
import { onTestFinished, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { OPENAI_DEFAULT_MODEL } from "../convex/providers/ai/registry";
import { appErrorData, isAppErrorData } from "../convex/errors";
import { SWEEP_DELAY_MS } from "../convex/jobs/projectRemoval";
import { revocationDelayMs } from "../convex/oauth/revocation";
import schema from "../convex/schema";
import { ColdHarness, type ColdBackend } from "./helpers/cold";
import { identity } from "./helpers/convex";
import { seedMetricHistory } from "./helpers/metricHistory";
import { SECRETS, expectNoSecrets, useFakeProviders } from "./helpers/secrets";

const fake = useFakeProviders();
const DAY = 24 * 60 * 60 * 1000;
/** Documented in docs/api.md: a series reads one rollup per point plus 4 documents of access checks. */
const SERIES_ACCESS_READS = 4;

/** Runs one cron run (and everything it schedules) under fake timers; returns the executions by path. */
async function cronCycle(t: ColdBackend, harness: ColdHarness): Promise<Record<string, number>> {
  const { counts } = await harness.measure(async () => {
    await t.mutation(internal.sync.schedule.scheduleDueSyncs, {});
    await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
  });
  const byPath: Record<string, number> = {};
  for (const { path } of counts.executions) byPath[path] = (byPath[path] ?? 0) + 1;
  return byPath;
}

/** Connection ids named in the arguments of every scheduled call so far. */
async function scheduledConnectionIds(t: ColdBackend): Promise<string[]> {
  const calls = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
  return calls.flatMap((call) => JSON.stringify(call.args).match(/"connectionIds":\[[^\]]*\]/g) ?? []);
}

test("a dashboard session: sign in, connect, sync, chart, insight, pause, remove", async () => {
  const harness = new ColdHarness();
  harness.install();
  onTestFinished(() => harness.uninstall());
  const t = harness.backend({ transactionLimits: true });

  // Signed out: the dashboard renders its sign-in screen; a query answers UNAUTHENTICATED (docs/api.md).
  const signedOut = await t.query(api.users.me, {}).catch((error: unknown) => error);
  expect(appErrorData(signedOut)?.code).toBe("UNAUTHENTICATED");
  expect(isAppErrorData((signedOut as { data?: unknown }).data)).toBe(true);

  // Sign in.
  const alice = t.withIdentity(identity("alice"));
  expect(await alice.query(api.users.me, {})).toBeNull();
  const { userId } = await alice.mutation(api.users.store, {});
  expect(await alice.query(api.users.me, {})).toMatchObject({ userId, name: "alice", email: "alice@example.test" });

  // A project, renamed.
  const projectId = await alice.mutation(api.projects.create, { name: "Acme" });
  await alice.mutation(api.projects.rename, { projectId, name: "Acme Inc" });
  expect(await alice.query(api.projects.list, {})).toMatchObject([{ projectId, name: "Acme Inc", role: "owner" }]);

  // Connect Stripe and GitHub (credentials), and Google Analytics over OAuth.
  const stripeId = await alice.mutation(api.connections.create, {
    projectId,
    service: "stripe",
    credentials: { secretKey: SECRETS.stripeKey },
  });
  const githubId = await alice.mutation(api.connections.create, {
    projectId,
    service: "github",
    credentials: { token: SECRETS.githubToken, repository: SECRETS.githubRepository },
  });
  const { authorizationUrl } = await alice.mutation(api.connections.startOAuth, {
    projectId,
    service: "google_analytics",
    settings: { propertyId: SECRETS.gaPropertyId },
  });
  const { callbackPath } = fake().oauth.authorize(authorizationUrl);
  const callback = await t.fetch(callbackPath);
  const flow = new URL(callback.headers.get("Location") ?? "").searchParams.get("flow") ?? "";
  const { connectionId: gaId } = await alice.action(api.connections.finishOAuth, { flow });

  // 90 days of 15-minute GitHub syncs before today (8,640 points), then the cron's sync of all three.
  const now = Date.now();
  const history = await seedMetricHistory(t, { connectionId: githubId, projectId }, "stars", now - 90 * DAY, now - 15 * 60_000);
  expect(history.rawPoints).toBe(8640);
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  vi.setSystemTime(now);
  const firstCycle = await cronCycle(t, harness);
  expect(firstCycle["sync/run:syncGroup"]).toBe(1);
  const connections = await alice.query(api.connections.list, { projectId });
  expect(connections.map((connection) => connection.status)).toEqual(["active", "active", "active"]);

  // metrics.latest: every metric of every connection, with its connection's name and service.
  const latest = await alice.query(api.metrics.latest, { projectId });
  const stars = latest.find((point) => point.connectionId === githubId && point.name === "stars");
  expect(stars).toMatchObject({ service: "github", connectionName: "GitHub", value: fake().values.github.stars, timestamp: now });
  expect(new Set(latest.map((point) => point.service))).toEqual(new Set(["stripe", "github", "google_analytics"]));
  expect(latest.find((point) => point.name === "balance.available.usd")?.value).toBe(1_234_567);

  // A 90-day chart: daily points, the last one the latest value, reading one rollup per point.
  const { result: chart, documentsRead } = await alice.run(async (ctx) => {
    const before = await ctx.meta.getTransactionMetrics();
    const result = await ctx.runQuery(api.metrics.series, { connectionId: githubId, name: "stars", from: now - 90 * DAY, to: now });
    const after = await ctx.meta.getTransactionMetrics();
    return { result, documentsRead: after.documentsRead.used - before.documentsRead.used };
  });
  expect(chart.resolution).toBe("day");
  expect(chart.points.length).toBeGreaterThanOrEqual(90);
  expect(chart.points.length).toBeLessThanOrEqual(91);
  expect(chart.points.at(-1)).toMatchObject({ at: now, value: fake().values.github.stars });
  for (let i = 1; i < chart.points.length; i++) expect(chart.points[i]!.at - chart.points[i - 1]!.at).toBeLessThanOrEqual(DAY);
  // Documented bound (docs/api.md): at most 91 daily rollups + 4 access reads; 8,641 raw points lie in the range.
  expect(documentsRead).toBeLessThanOrEqual(91 + SERIES_ACCESS_READS);
  expect(documentsRead).toBe(chart.points.length + SERIES_ACCESS_READS);
  console.info(`90-day series: ${chart.points.length} points, ${documentsRead} documents read; ${history.rawPoints + 1} raw points in range`);
  // A 3-day chart: hourly.
  const recent = await alice.query(api.metrics.series, { connectionId: githubId, name: "stars", from: now - 3 * DAY, to: now });
  expect(recent.resolution).toBe("hour");
  expect(recent.points.length).toBeGreaterThanOrEqual(72);
  vi.useRealTimers();

  // An insight, listed with who asked and which model.
  await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey });
  const insight = await alice.action(api.ai.generateInsight, { projectId });
  const insights = await alice.query(api.insights.list, { projectId, paginationOpts: { numItems: 10, cursor: null } });
  expect(insights.page).toEqual([
    {
      insightId: insight.insightId,
      text: fake().values.insightText,
      provider: "openai",
      model: OPENAI_DEFAULT_MODEL,
      createdAt: insight.createdAt,
      askedBy: { userId, name: "alice" },
    },
  ]);

  // Pause GitHub: the next cycles sync the others and never call anything for it.
  expect(await alice.mutation(api.connections.pause, { connectionId: githubId })).toBe("inactive");
  const githubRequests = () => fake().requests.filter((request) => request.route === "github.repo").length;
  const githubBefore = githubRequests();
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  const scheduledBefore = (await scheduledConnectionIds(t)).length;
  for (let cycle = 0; cycle < 3; cycle++) {
    // Past 1.5 sync intervals: the project's next slot has passed, whatever its phase (sync/policy.ts nextSyncSlot).
    vi.setSystemTime(Date.now() + 25 * 60_000);
    const executions = await cronCycle(t, harness);
    expect(executions["sync/run:syncGroup"]).toBe(1);
  }
  const groups = (await scheduledConnectionIds(t)).slice(scheduledBefore);
  expect(groups.length).toBe(3);
  for (const group of groups) {
    expect(group).toContain(stripeId);
    expect(group).toContain(gaId);
    expect(group).not.toContain(githubId);
  }
  expect(githubRequests()).toBe(githubBefore);
  // With every connection paused, a cycle is the cron's own mutation and nothing else.
  await alice.mutation(api.connections.pause, { connectionId: stripeId });
  await alice.mutation(api.connections.pause, { connectionId: gaId });
  vi.setSystemTime(Date.now() + 25 * 60_000);
  expect(await cronCycle(t, harness)).toEqual({ "sync/schedule:scheduleDueSyncs": 1 });
  vi.useRealTimers();
  expect(await alice.mutation(api.connections.resume, { connectionId: gaId })).toBe("pending");

  // Remove the project: gone at once, its rows deleted in batches, the OAuth grant revoked at Google.
  const refreshTokens = new Set(fake().oauth.liveRefreshTokens);
  await alice.mutation(api.projects.remove, { projectId });
  expect(await alice.query(api.projects.list, {})).toEqual([]);
  expect(appErrorData(await alice.query(api.metrics.latest, { projectId }).catch((error: unknown) => error))?.code).toBe("NOT_FOUND");
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
  vi.advanceTimersByTime(SWEEP_DELAY_MS);
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
  vi.useRealTimers();
  // The grant's revocation is due revocationDelayMs after the batch that queued it (its timer is a real one
  // here): run it as the scheduler then will.
  expect(fake().oauth.revoked.length).toBe(0);
  const queued = await t.run((ctx) => ctx.db.query("oauthRevocations").collect());
  expect(queued.map((row) => row.createdAt + revocationDelayMs() > Date.now())).toEqual([true]);
  await t.action(internal.oauth.revocation.revokeGrant, { revocationId: queued[0]!._id });
  expect(fake().oauth.revoked.length).toBe(1);
  expect(refreshTokens.has(fake().oauth.revoked[0]!)).toBe(true);

  // No row of the project left in any table; only the remover's own audit entries name it.
  const ids = [projectId, stripeId, githubId, gaId, insight.insightId] as string[];
  const leftovers: { table: string; doc: Record<string, unknown> }[] = [];
  await t.run(async (ctx) => {
    for (const table of Object.keys(schema.tables) as (keyof typeof schema.tables)[]) {
      for (const doc of await ctx.db.query(table).collect()) {
        const text = JSON.stringify(doc);
        if (ids.some((id) => text.includes(id))) leftovers.push({ table, doc: doc as Record<string, unknown> });
      }
    }
  });
  // The removal entry and the revocation's entry, in alice's own log.
  expect(leftovers.length).toBeGreaterThanOrEqual(2);
  for (const { table, doc } of leftovers) {
    expect(table).toBe("auditLog");
    expect(doc.projectId).toBeUndefined();
    expect(doc.ownerId).toBe(userId);
  }
  const mine = await alice.query(api.auditLog.listMine, { paginationOpts: { numItems: 100, cursor: null } });
  const actions = mine.page.map((entry) => entry.action);
  expect(actions).toContain("project.removed");
  expect(actions).toContain("connection.tokens_revoked");
  expect(mine.page.find((entry) => entry.action === "connection.tokens_revoked")?.detail).toBe("revoked");
  expectNoSecrets(leftovers, fake().oauth.issued);
});
