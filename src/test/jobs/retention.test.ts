// Metric points and audit entries older than their retention are deleted by
// a daily job in bounded batches; newer rows, and what reads them, stay.
import { afterEach, beforeEach, expect, onTestFinished, test, vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import crons from "../../convex/crons";
import { RETENTION_BATCH_SIZE } from "../../convex/jobs/retention";
import type { Backend } from "../helpers/convex";
import { seedJobFixture } from "../helpers/seed";

const DAY = 24 * 60 * 60 * 1000;
const START = Date.UTC(2025, 0, 1);

let t: Backend;
let projectId: Id<"projects">;
let connectionId: Id<"connections">;

beforeEach(async () => {
  ({ t, projectId, connectionId } = await seedJobFixture(START, "sk_test_retention0000000000"));
});

afterEach(() => {
  vi.useRealTimers();
});

/** `count` metric points and one audit entry, stored now, all named `label`. */
async function store(label: string, count = 1): Promise<void> {
  await t.run(async (ctx) => {
    for (let i = 0; i < count; i++) {
      await ctx.db.insert("metrics", { connectionId, projectId, name: label, value: i, timestamp: Date.now() });
    }
    await ctx.db.insert("auditLog", {
      action: "connection.credentials_decrypted",
      projectId,
      targetTable: "connections",
      targetId: connectionId,
      detail: label,
      at: Date.now(),
    });
  });
}

async function remaining(): Promise<{ metrics: Record<string, number>; audit: string[] }> {
  return t.run(async (ctx) => {
    const metrics: Record<string, number> = {};
    for (const point of await ctx.db.query("metrics").collect()) metrics[point.name] = (metrics[point.name] ?? 0) + 1;
    const audit = (await ctx.db.query("auditLog").collect()).map((entry) => entry.detail ?? "");
    return { metrics, audit };
  });
}

async function runRetention(): Promise<void> {
  await t.mutation(internal.jobs.retention.start, {});
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
}

test("runs daily", () => {
  const job = Object.values(crons.crons).find((cron) => cron.name === "jobs/retention:start");
  expect(job?.schedule).toMatchObject({ type: "daily" });
});

test("deletes metrics after 90 days and audit entries after 365, in batches; newer rows and the HTTP API's read stay", async () => {
  await store("ancient", RETENTION_BATCH_SIZE + 250);
  vi.setSystemTime(START + 370 * DAY);
  await store("months old", 3);
  vi.setSystemTime(START + 470 * DAY);
  await store("fresh", 2);

  // One batch deletes at most RETENTION_BATCH_SIZE rows.
  expect(await t.mutation(internal.jobs.retention.purgeBatch, { table: "metrics", before: Date.now() - 90 * DAY })).toEqual({
    deleted: RETENTION_BATCH_SIZE,
  });
  await runRetention();

  expect(await remaining()).toEqual({ metrics: { fresh: 2 }, audit: ["months old", "fresh"] });
  const latest = await t.query(internal.projects.latestMetrics, { projectId });
  expect(latest.map((point) => point.name)).toEqual(["fresh", "fresh"]);
});

test("METRICS_RETENTION_DAYS and AUDIT_RETENTION_DAYS override the defaults", async () => {
  vi.stubEnv("METRICS_RETENTION_DAYS", "200");
  vi.stubEnv("AUDIT_RETENTION_DAYS", "30");
  onTestFinished(() => {
    vi.stubEnv("METRICS_RETENTION_DAYS", "");
    vi.stubEnv("AUDIT_RETENTION_DAYS", "");
  });
  await store("old");
  vi.setSystemTime(START + 100 * DAY);
  await store("fresh");

  await runRetention();

  expect(await remaining()).toEqual({ metrics: { old: 1, fresh: 1 }, audit: ["fresh"] });
});
