// The dashboard's reads and management functions in detail: rollups as syncs
// write them, series resolution and read bounds, metrics.latest's reads,
// pausing (also against a sync in flight), insights pages, renaming, and
// removing a project in bounded batches without touching other projects.
import { afterEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { appError, appErrorData, isAppErrorData } from "../convex/errors";
import { MAX_INSIGHTS_PAGE_SIZE } from "../convex/insights";
import { bucketStart, MAX_SERIES_POINTS } from "../convex/metricHistory/rollups";
import { ROWS_PER_BATCH } from "../convex/jobs/projectRemoval";
import schema from "../convex/schema";
import { errorOf, projectWithEveryRole, userIdOf, type Caller } from "./helpers/api";
import { newBackend, type Backend } from "./helpers/convex";
import { foldRollups, seedMetricHistory } from "./helpers/metricHistory";
import { seedConnection } from "./helpers/seed";

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 0, 1, 0, 7);
const STRIPE = { secretKey: "sk_live_dashboard0000000000004242" };

afterEach(() => {
  vi.useRealTimers();
});

/** What a successful sync of `connectionId` stores, through the real outcome mutation, at the current (fake) time. */
async function sync(t: Backend, projectId: Id<"projects">, connectionId: Id<"connections">, metrics: { name: string; value: number }[]) {
  void projectId; // outcomes name their connection; its project comes from the row
  const [result] = await t.mutation(internal.sync.outcomes.recordSyncOutcomes, {
    outcomes: [{ connectionId, credentialsVersion: 1, outcome: { kind: "synced", metrics } }],
  });
  return result;
}

/** Documents a query reads in its own transaction, measured by Convex's transaction metrics (convex-test). */
async function documentsRead<T>(caller: Caller, run: (ctx: { runQuery: Caller["query"] }) => Promise<T>) {
  return caller.run(async (ctx) => {
    const before = await ctx.meta.getTransactionMetrics();
    const result = await run({ runQuery: ctx.runQuery as Caller["query"] });
    const after = await ctx.meta.getTransactionMetrics();
    return { result, read: after.documentsRead.used - before.documentsRead.used };
  });
}

async function rollupsOf(t: Backend, connectionId: Id<"connections">) {
  return t.run(async (ctx) =>
    ctx.db
      .query("metricRollups")
      .withIndex("by_connectionId_and_name_and_resolution_and_start", (q) => q.eq("connectionId", connectionId))
      .collect(),
  );
}

async function pointsOf(t: Backend, connectionId: Id<"connections">) {
  return t.run(async (ctx) =>
    ctx.db
      .query("metrics")
      .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connectionId))
      .collect(),
  );
}

describe("rollups and metrics.series", () => {
  test("syncs fold their points into hourly and daily rollups exactly as documented", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(START);
    const t = newBackend();
    const { projectId } = await projectWithEveryRole(t);
    const connectionId = await seedConnection(t, projectId, "github", { token: "ghp_rollups00000000000000000000000000000", repository: "a/b" });
    const points: { value: number; at: number }[] = [];
    const values = [5, 9, 2, 7, 7, 3, 11, 4, 6, 8, 1, 10];
    for (const [i, value] of values.entries()) {
      // Every 25 minutes to 3 hours: several per hour, across two UTC days.
      vi.setSystemTime(START + i * (i % 2 ? 25 * 60_000 : 3 * HOUR) + i * 2 * HOUR);
      await sync(t, projectId, connectionId, [{ name: "stars", value }]);
      points.push({ value, at: Date.now() });
    }
    const stored = (await rollupsOf(t, connectionId)).map(({ resolution, start, last, lastAt, min, max }) => ({
      resolution,
      start,
      last,
      lastAt,
      min,
      max,
    }));
    const byKey = (a: { resolution: string; start: number }, b: { resolution: string; start: number }) =>
      `${a.resolution}${a.start}`.localeCompare(`${b.resolution}${b.start}`);
    expect(stored.sort(byKey)).toEqual(foldRollups(points).sort(byKey));
    expect(new Set(stored.map((row) => row.resolution))).toEqual(new Set(["hour", "day"]));
  });

  test("hourly up to 20 days, daily beyond; the last point is the latest value; reads one rollup per point", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(START);
    const t = newBackend();
    const { projectId, member } = await projectWithEveryRole(t);
    const connectionId = await seedConnection(t, projectId, "github", { token: "ghp_series000000000000000000000000000000", repository: "a/b" });
    const seededAt = Date.now();
    await seedMetricHistory(t, { connectionId, projectId }, "stars", seededAt - 400 * DAY, seededAt - HOUR, HOUR);
    await sync(t, projectId, connectionId, [{ name: "stars", value: 123_456 }]);
    const now = Date.now();

    const series = (from: number, to = now) =>
      documentsRead(member, (ctx) => ctx.runQuery(api.metrics.series, { connectionId, name: "stars", from, to }));
    const week = await series(now - 7 * DAY);
    expect(week.result.resolution).toBe("hour");
    expect(week.result.points.length).toBe(7 * 24 + 1);
    expect(week.result.points.at(-1)?.value).toBe(123_456);
    expect(week.read).toBe(week.result.points.length + 4);

    const twentyDays = await series(now - 20 * DAY);
    expect(twentyDays.result.resolution).toBe("hour");
    expect(twentyDays.result.points.length).toBeLessThanOrEqual(481);

    const quarter = await series(now - 90 * DAY);
    expect(quarter.result.resolution).toBe("day");
    expect(quarter.result.points.length).toBe(91);
    expect(quarter.result.points.at(-1)?.value).toBe(123_456);
    expect(quarter.read).toBe(95);

    // Longer than MAX_SERIES_POINTS days: the newest 500 buckets, never more reads.
    const long = await series(now - 600 * DAY);
    expect(long.result.points.length).toBeLessThanOrEqual(MAX_SERIES_POINTS);
    expect(long.read).toBeLessThanOrEqual(MAX_SERIES_POINTS + 4);
    expect(long.result.points.at(-1)?.value).toBe(123_456);

    // A range in the past ends with the newest value of the bucket its end falls in (a rollup keeps only that one).
    const past = await series(now - 30 * DAY, now - 10 * DAY);
    const endBucket = bucketStart(now - 10 * DAY, "day");
    expect(past.result.points.every((point) => point.at < endBucket + DAY)).toBe(true);
    expect(past.result.points.at(-1)?.at).toBeGreaterThanOrEqual(endBucket);

    const refused = await errorOf(member.query(api.metrics.series, { connectionId, name: "stars", from: now, to: now - DAY }));
    expect(refused.code).toBe("INVALID_ARGUMENT");
    expect(await member.query(api.metrics.series, { connectionId, name: "nope", from: now - DAY, to: now })).toEqual({
      resolution: "hour",
      points: [],
    });
  });

  test("metrics.latest reads 1 + (points of its latest sync) per connection, whatever the history", async () => {
    const t = newBackend();
    const { projectId, member } = await projectWithEveryRole(t);
    const github = await seedConnection(t, projectId, "github", { token: "ghp_latest000000000000000000000000000000", repository: "a/b" });
    const stripe = await seedConnection(t, projectId, "stripe", STRIPE);
    await seedConnection(t, projectId, "stripe", STRIPE); // never synced
    const now = Date.now();
    await seedMetricHistory(t, { connectionId: github, projectId }, "stars", now - 10 * DAY, now - HOUR);
    await sync(t, projectId, github, [
      { name: "stars", value: 10 },
      { name: "forks", value: 2 },
    ]);
    await sync(t, projectId, stripe, [{ name: "mrr.usd", value: 990 }]);

    const { result, read } = await documentsRead(member, (ctx) => ctx.runQuery(api.metrics.latest, { projectId }));
    expect(result.map(({ service, connectionName, name, value }) => ({ service, connectionName, name, value })).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { service: "github", connectionName: "github connection", name: "forks", value: 2 },
      { service: "stripe", connectionName: "stripe connection", name: "mrr.usd", value: 990 },
      { service: "github", connectionName: "github connection", name: "stars", value: 10 },
    ]);
    // 3 access reads (user, project, membership) + 3 connections + (1 + 2) + (1 + 1) + 0.
    expect(read).toBe(3 + 3 + 3 + 2);
    // The HTTP API's query answers the same points.
    expect((await t.query(internal.projects.latestMetrics, { projectId })).length).toBe(3);
  });

  test("removing a connection deletes its rollups; retention trims them with the raw points", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(START);
    const t = newBackend();
    const { projectId, admin } = await projectWithEveryRole(t);
    const kept = await seedConnection(t, projectId, "stripe", STRIPE);
    const removed = await seedConnection(t, projectId, "stripe", STRIPE);
    await sync(t, projectId, kept, [{ name: "mrr.usd", value: 1 }]);
    await sync(t, projectId, removed, [{ name: "mrr.usd", value: 1 }]);
    vi.setSystemTime(START + 100 * DAY);
    await sync(t, projectId, kept, [{ name: "mrr.usd", value: 2 }]);

    await admin.mutation(api.connections.remove, { connectionId: removed });
    expect(await rollupsOf(t, removed)).toEqual([]);

    await t.mutation(internal.jobs.retention.start, {});
    await t.finishAllScheduledFunctions(() => undefined);
    expect((await rollupsOf(t, kept)).map((row) => row.last)).toEqual([2, 2]);
    expect((await pointsOf(t, kept)).map((row) => row.value)).toEqual([2]);
  });
});

test("backfill folds history stored before rollups existed, idempotently, skipping removed connections", async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(START);
  const t = newBackend();
  const { projectId } = await projectWithEveryRole(t);
  const kept = await seedConnection(t, projectId, "stripe", STRIPE);
  const removed = await seedConnection(t, projectId, "stripe", STRIPE);
  const points: { value: number; at: number }[] = [];
  await t.run(async (ctx) => {
    for (let i = 0; i < 3 * 96; i++) {
      const at = START - 3 * DAY + i * 15 * 60_000;
      points.push({ value: (i * 37) % 101, at });
      await ctx.db.insert("metrics", { connectionId: kept, projectId, name: "mrr.usd", value: (i * 37) % 101, timestamp: at });
      await ctx.db.insert("metrics", { connectionId: removed, projectId, name: "mrr.usd", value: i, timestamp: at });
    }
    await ctx.db.delete("connections", removed);
  });
  const comparable = async () =>
    (await rollupsOf(t, kept))
      .map(({ resolution, start, last, lastAt, min, max }) => ({ resolution, start, last, lastAt, min, max }))
      .sort((a, b) => `${a.resolution}${a.start}`.localeCompare(`${b.resolution}${b.start}`));
  const expected = foldRollups(points).sort((a, b) => `${a.resolution}${a.start}`.localeCompare(`${b.resolution}${b.start}`));

  for (let run = 0; run < 2; run++) {
    expect(await t.mutation(internal.metricHistory.backfill.run, { batchSize: 100 })).toEqual({ folded: 50, done: false });
    await t.finishAllScheduledFunctions(() => undefined);
    expect(await comparable()).toEqual(expected);
  }
  expect(await rollupsOf(t, removed)).toEqual([]);

  // Retention ages rollups by bucket start, not by when the backfill wrote them.
  vi.setSystemTime(START + 89 * DAY);
  await t.mutation(internal.jobs.retention.start, {});
  await t.finishAllScheduledFunctions(() => undefined);
  const left = await rollupsOf(t, kept);
  expect(left.length).toBeGreaterThan(0);
  expect(left.every((row) => row.start >= START - DAY)).toBe(true);
  expect(left.length).toBeLessThan(expected.length);
});

describe("connections.pause and resume", () => {
  test("a paused connection leaves the due index; a sync in flight stores nothing; resume and new credentials make it due", async () => {
    const t = newBackend();
    const { projectId, admin } = await projectWithEveryRole(t);
    const connectionId = await admin.mutation(api.connections.create, { projectId, service: "stripe", credentials: STRIPE });
    const due = () =>
      t.run(async (ctx) =>
        (await ctx.db.query("connections").withIndex("by_nextSyncAt", (q) => q.lte("nextSyncAt", Date.now() + 365 * DAY)).collect()).map(
          (row) => row._id,
        ),
      );
    expect(await due()).toEqual([connectionId]);

    expect(await admin.mutation(api.connections.pause, { connectionId })).toBe("inactive");
    expect(await admin.mutation(api.connections.pause, { connectionId })).toBe("inactive");
    expect(await due()).toEqual([]);
    // A sync that loaded the connection before the pause reports back: nothing stored, still paused.
    expect(await sync(t, projectId, connectionId, [{ name: "mrr.usd", value: 5 }])).toEqual({ status: "inactive", metricsStored: 0 });
    expect(await pointsOf(t, connectionId)).toEqual([]);
    expect((await admin.query(api.connections.get, { connectionId })).status).toBe("inactive");

    expect(await admin.mutation(api.connections.resume, { connectionId })).toBe("pending");
    expect(await admin.mutation(api.connections.resume, { connectionId })).toBe("pending");
    expect(await due()).toEqual([connectionId]);
    await admin.mutation(api.connections.pause, { connectionId });
    await admin.mutation(api.connections.updateCredentials, { connectionId, credentials: STRIPE });
    expect((await admin.query(api.connections.get, { connectionId })).status).toBe("pending");
    expect(await due()).toEqual([connectionId]);

    const actions = await t.run(async (ctx) =>
      (await ctx.db.query("auditLog").withIndex("by_targetId_and_at", (q) => q.eq("targetId", connectionId)).collect()).map((entry) => entry.action),
    );
    expect(actions.filter((action) => action === "connection.paused").length).toBe(2);
    expect(actions.filter((action) => action === "connection.resumed").length).toBe(1);
  });
});

describe("insights.list, users.me, projects.rename", () => {
  test("insights newest first with their author, pages bounded", async () => {
    const t = newBackend();
    const { projectId, member, admin } = await projectWithEveryRole(t);
    const carol = await userIdOf(t, "carol");
    const bob = await userIdOf(t, "bob");
    await t.run(async (ctx) => {
      for (let i = 0; i < 60; i++) {
        await ctx.db.insert("insights", {
          projectId,
          userId: i % 2 ? carol : bob,
          provider: "anthropic",
          model: "claude-test",
          text: `insight ${i}`,
          createdAt: START + i,
        });
      }
    });
    const first = await member.query(api.insights.list, { projectId, paginationOpts: { numItems: 1000, cursor: null } });
    expect(first.page.length).toBe(MAX_INSIGHTS_PAGE_SIZE);
    expect(first.page[0]).toMatchObject({ text: "insight 59", model: "claude-test", askedBy: { userId: carol, name: "carol" } });
    expect(first.page[1]).toMatchObject({ text: "insight 58", askedBy: { userId: bob, name: "bob" } });
    const second = await admin.query(api.insights.list, { projectId, paginationOpts: { numItems: 50, cursor: first.continueCursor } });
    expect(second.page.map((insight) => insight.text).at(-1)).toBe("insight 0");
    expect(second.isDone).toBe(true);
  });

  test("rename cleans the name like create, refuses unsafe ones, and is audited", async () => {
    const t = newBackend();
    const { projectId, admin, member } = await projectWithEveryRole(t);
    await admin.mutation(api.projects.rename, { projectId, name: "  Acme Labs  " });
    expect((await member.query(api.projects.list, {}))[0]?.name).toBe("Acme Labs");
    expect((await errorOf(admin.mutation(api.projects.rename, { projectId, name: " \u202e " }))).code).toBe("INVALID_ARGUMENT");
    const entries = await member.query(api.auditLog.list, { projectId, paginationOpts: { numItems: 5, cursor: null } });
    expect(entries.page[0]).toMatchObject({ action: "project.renamed", targetTable: "projects", targetId: projectId });
  });
});

describe("projects.remove", () => {
  test("deletes in batches of at most ROWS_PER_BATCH rows, leaves other projects alone, and audits in the remover's log", async () => {
    const t = newBackend();
    const { projectId, owner, admin, member } = await projectWithEveryRole(t);
    const other = await owner.mutation(api.projects.create, { name: "Other" });
    const otherConnection = await owner.mutation(api.connections.create, { projectId: other, service: "stripe", credentials: STRIPE });
    await sync(t, other, otherConnection, [{ name: "mrr.usd", value: 7 }]);
    const connectionId = await admin.mutation(api.connections.create, { projectId, service: "stripe", credentials: STRIPE });
    const now = Date.now();
    await seedMetricHistory(t, { connectionId, projectId }, "mrr.usd", now - 30 * DAY, now, 15 * 60_000);
    await admin.mutation(api.apiKeys.create, { projectId, name: "CI" });
    await owner.mutation(api.invitations.create, { projectId, email: "dave@example.test", role: "member" });
    const before = await t.run(async (ctx) => (await ctx.db.query("metrics").collect()).length + (await ctx.db.query("metricRollups").collect()).length);
    expect(before).toBeGreaterThan(3 * ROWS_PER_BATCH);

    await owner.mutation(api.projects.remove, { projectId });
    expect((await errorOf(member.query(api.projects.members, { projectId }))).code).toBe("NOT_FOUND");
    let batches = 0;
    for (;;) {
      const pending = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
      const next = pending.find((call) => call.name.includes("projectRemoval") && call.state.kind === "pending" && call.scheduledTime <= Date.now());
      if (!next) break;
      const args = next.args[0] as { projectId: Id<"projects">; step: "connections"; pass: number };
      await t.run((ctx) => ctx.scheduler.cancel(next._id));
      const { deleted } = await t.mutation(internal.jobs.projectRemoval.purgeBatch, args);
      expect(deleted).toBeLessThanOrEqual(ROWS_PER_BATCH);
      batches++;
    }
    expect(batches).toBeGreaterThanOrEqual(3);

    const leftovers = await t.run(async (ctx) => {
      const found: string[] = [];
      for (const table of Object.keys(schema.tables) as (keyof typeof schema.tables)[]) {
        for (const doc of await ctx.db.query(table).collect()) {
          const text = JSON.stringify(doc);
          if (text.includes(projectId) || text.includes(connectionId)) found.push(`${table}:${(doc as { action?: string }).action ?? ""}`);
        }
      }
      return found;
    });
    // Only the removal entry in the owner's own log names the project; the second pass is still scheduled.
    expect(leftovers).toEqual(["auditLog:project.removed"]);
    expect(await owner.query(api.metrics.latest, { projectId: other })).toMatchObject([{ connectionId: otherConnection, value: 7 }]);
    expect((await owner.query(api.auditLog.listMine, { paginationOpts: { numItems: 5, cursor: null } })).page[0]).toMatchObject({
      action: "project.removed",
      targetId: projectId,
      detail: 'name: "Acme"',
    });
  });

  test("appErrorData recognises the error data by its shape, whichever copy of convex threw it", () => {
    const native = appError("RATE_LIMITED", "Too many requests", { retryAt: 1 });
    expect(appErrorData(native)).toEqual({ code: "RATE_LIMITED", message: "Too many requests", retryAt: 1 });
    // A ConvexError made by another copy of the package: not `instanceof` this one's class.
    const foreign = Object.assign(new Error("x"), { name: "ConvexError", data: { code: "NOT_FOUND", message: "Project not found" } });
    expect(appErrorData(foreign)).toEqual({ code: "NOT_FOUND", message: "Project not found" });
    const marked = { [Symbol.for("ConvexError")]: true, data: { code: "CONFLICT", message: "m" } };
    expect(appErrorData(marked)?.code).toBe("CONFLICT");
    expect(appErrorData(Object.assign(new Error("x"), { data: { code: "NOT_FOUND", message: "m" } }))).toBeNull();
    expect(appErrorData(Object.assign(new Error("x"), { name: "ConvexError", data: { code: "NOPE", message: "m" } }))).toBeNull();
    expect(isAppErrorData({ code: "FORBIDDEN", message: "m" })).toBe(true);
    expect(isAppErrorData({ code: "FORBIDDEN" })).toBe(false);
    expect(isAppErrorData("FORBIDDEN")).toBe(false);
  });
});
