// The rollup backfill (metricHistory/backfill.ts): a bounded batch size, and
// an upper cutoff so it ends even while syncs keep storing points.
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { MAX_BACKFILL_BATCH_SIZE } from "../../convex/metricHistory/backfill";
import { errorOf } from "../helpers/api";
import type { Backend } from "../helpers/convex";
import { seedJobFixture } from "../helpers/seed";

const START = Date.UTC(2026, 0, 1);

let t: Backend;
let projectId: Id<"projects">;
let connectionId: Id<"connections">;

beforeEach(async () => {
  ({ t, projectId, connectionId } = await seedJobFixture(START, "sk_test_backfill000000000000000"));
});

afterEach(() => {
  vi.useRealTimers();
});

/** Stores `count` raw points of metric `name` now, without rollups (as the original, or a sync, stored them). */
async function storePoints(name: string, count: number): Promise<void> {
  await t.run(async (ctx) => {
    for (let i = 0; i < count; i++) await ctx.db.insert("metrics", { connectionId, projectId, name, value: i, timestamp: Date.now() });
  });
}

/** The names of the metrics that have rollups. */
async function rolledUp(): Promise<string[]> {
  return t.run(async (ctx) => [...new Set((await ctx.db.query("metricRollups").collect()).map((row) => row.name))].sort());
}

async function pendingBatches() {
  const calls = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
  return calls.filter((call) => call.state.kind === "pending");
}

test("with no point stored, it ends at once and schedules nothing", async () => {
  expect(await t.mutation(internal.metricHistory.backfill.run, {})).toEqual({ folded: 0, done: true });
  expect(await pendingBatches()).toEqual([]);
});

test.each([0, -1, 1.5, MAX_BACKFILL_BATCH_SIZE + 1, 1e9, Number.NaN])(
  "batchSize %s is INVALID_ARGUMENT on field batchSize, before anything is read, written or scheduled",
  async (batchSize) => {
    await storePoints("old", 3);
    const error = await errorOf(t.mutation(internal.metricHistory.backfill.run, { batchSize }));
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", field: "batchSize" });
    expect(error.message).toContain(String(MAX_BACKFILL_BATCH_SIZE));
    expect(await rolledUp()).toEqual([]);
    expect(await pendingBatches()).toEqual([]);
  },
);

test(`batchSize ${MAX_BACKFILL_BATCH_SIZE} is accepted and folds a full batch within the transaction limits`, async () => {
  await storePoints("old", MAX_BACKFILL_BATCH_SIZE + 1);
  expect(await t.mutation(internal.metricHistory.backfill.run, { batchSize: MAX_BACKFILL_BATCH_SIZE })).toEqual({
    folded: MAX_BACKFILL_BATCH_SIZE,
    done: false,
  });
});

test("folds only the points that existed when it started, and ends while syncs keep storing points", async () => {
  await storePoints("before", 5);
  const newestBefore = await t.run(async (ctx) => (await ctx.db.query("metrics").order("desc").first())!._creationTime);
  vi.setSystemTime(START + 60_000);
  expect(await t.mutation(internal.metricHistory.backfill.run, { batchSize: 2 })).toEqual({ folded: 2, done: false });

  // A sync stores points before every batch (its own mutation folds them; here they stay raw to be told apart).
  let batches = 1;
  for (let pending = await pendingBatches(); pending.length > 0; pending = await pendingBatches()) {
    vi.setSystemTime(Date.now() + 60_000);
    await storePoints("after", 2);
    const [next] = pending;
    expect(next!.name).toBe("metricHistory/backfill:run");
    expect(next!.args[0]).toMatchObject({ through: newestBefore, batchSize: 2 });
    await t.run((ctx) => ctx.scheduler.cancel(next!._id));
    await t.mutation(internal.metricHistory.backfill.run, next!.args[0] as { after: number; through: number; batchSize: number });
    batches++;
    expect(batches, "the backfill ends").toBeLessThanOrEqual(3);
  }
  expect(batches).toBe(3);
  expect(await rolledUp()).toEqual(["before"]);
});
