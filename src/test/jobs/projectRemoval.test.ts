// Removing a project (jobs/projectRemoval.ts) deletes its rows from every
// table in STEPS, through each table's projectId index, in batches of at most
// ROWS_PER_BATCH rows that continue at the step where the last one stopped.
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { ROWS_PER_BATCH, STEPS } from "../../convex/jobs/projectRemoval";
import { identity, type Backend } from "../helpers/convex";
import { seedJobFixture } from "../helpers/seed";

const START = Date.UTC(2026, 0, 1);

let t: Backend;
let projectId: Id<"projects">;
let connectionId: Id<"connections">;

beforeEach(async () => {
  ({ t, projectId, connectionId } = await seedJobFixture(START, "sk_test_projectRemoval000000000"));
});

afterEach(() => {
  vi.useRealTimers();
});

/** Rows of each STEPS table that name the project. */
async function projectRows(): Promise<Record<string, number>> {
  return t.run(async (ctx) => {
    const counts: Record<string, number> = {};
    for (const table of STEPS) {
      const rows = (await ctx.db.query(table).collect()).filter((row) => (row as { projectId?: string }).projectId === projectId);
      if (rows.length > 0) counts[table] = rows.length;
    }
    return counts;
  });
}

/** Runs the pending removal batches one at a time (the second pass once it is due); their results. */
async function runBatches(): Promise<{ deleted: number; done: boolean }[]> {
  const results: { deleted: number; done: boolean }[] = [];
  for (;;) {
    const pending = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
    const next = pending.find((call) => call.name === "jobs/projectRemoval:purgeBatch" && call.state.kind === "pending");
    if (!next) return results;
    vi.setSystemTime(Math.max(Date.now(), next.scheduledTime));
    await t.run((ctx) => ctx.scheduler.cancel(next._id));
    results.push(await t.mutation(internal.jobs.projectRemoval.purgeBatch, next.args[0] as never));
  }
}

test("a row in every STEPS table is deleted; a full batch continues at the step it stopped in", async () => {
  const userId = await t.run(async (ctx) => (await ctx.db.query("users").first())!._id);
  await t.run(async (ctx) => {
    const now = Date.now();
    await ctx.db.insert("oauthStates", { stateHash: "h", userId, projectId, service: "googleAnalytics", name: "GA", settings: {}, expiresAt: now + 600_000, createdAt: now });
    await ctx.db.insert("invitations", { projectId, email: "bob@example.test", role: "member", state: "pending", invitedBy: userId, createdAt: now, expiresAt: now + 86_400_000 });
    await ctx.db.insert("apiKeys", { projectId, name: "CI", keyHash: "0".repeat(64), keyHashAlgorithm: "sha256", prefix: "dt_live_0000", createdAt: now });
    await ctx.db.insert("insights", { projectId, userId, provider: "openai", model: "m", text: "t", createdAt: now });
    await ctx.db.insert("metricRollups", { connectionId, projectId, name: "mrr.usd", resolution: "hour", start: now, last: 1, lastAt: now, min: 1, max: 1 });
    // One batch's worth of points and one more, then audit entries: the first batch ends among the points.
    for (let i = 0; i <= ROWS_PER_BATCH; i++) await ctx.db.insert("metrics", { connectionId, projectId, name: "mrr.usd", value: i, timestamp: now });
    await ctx.db.insert("auditLog", { action: "connection.credentials_decrypted", projectId, targetTable: "connections", targetId: connectionId, at: now });
  });
  expect(Object.keys(await projectRows()).sort()).toEqual([...STEPS].sort());

  const alice = t.withIdentity(identity("alice"));
  await alice.mutation(api.projects.remove, { projectId });
  const first = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
  expect(first.filter((call) => call.name === "jobs/projectRemoval:purgeBatch").map((call) => call.args[0])).toEqual([
    { projectId, step: "metrics", pass: 1 },
  ]);

  const results = await runBatches();
  expect(results.every((result) => result.deleted <= ROWS_PER_BATCH)).toBe(true);
  expect(results.at(-1)).toEqual({ deleted: 0, done: true }); // the second pass, 31 minutes later
  expect(await projectRows()).toEqual({});
});
