/**
 * Cold cost of one metric-sync cron cycle (`npm run bench`): function
 * executions and PBKDF2 runs per connection and per project, counted by
 * the cold harness (src/test/helpers/cold.ts) while the cron's own job
 * (read from crons.ts) and everything it schedules run to the end.
 * Connections are Stripe ones, created through connections.create, answered
 * by the local fake provider. Sizes: BENCH_SYNC_PROJECTS (default 4) and
 * BENCH_SYNC_CONNECTIONS_PER_PROJECT (default 10).
 *
 * Printed next to the targets of issue 8 (≤ 0.5 executions per connection,
 * ≤ 2 PBKDF2 per project) and the per-connection design the sync had
 * before it (a scheduled action per connection plus its loadForSync,
 * audit.record and recordSyncOutcome: ≥ 4 executions and 1 key derivation
 * per connection, ×2 PBKDF2 under v1's key ids). Asserts nothing about time.
 */
import { makeFunctionReference } from "convex/server";
import { expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import crons from "../convex/crons";
import { useColdHarness, type ColdBackend } from "../test/helpers/cold";
import { identity } from "../test/helpers/convex";
import { SECRETS, useFakeProviders } from "../test/helpers/secrets";
import { envInt, table } from "./designs";

const print = console.log.bind(console);
const harness = useColdHarness();
useFakeProviders();

const PROJECTS = envInt("BENCH_SYNC_PROJECTS", 4);
const PER_PROJECT = envInt("BENCH_SYNC_CONNECTIONS_PER_PROJECT", 10);
const modules = import.meta.glob("../convex/**/*.ts");

/** Runs the cron job `job` once, cold, and every function it schedules, to the end. */
async function runCronJob(t: ColdBackend, job: { name: string; args: unknown }): Promise<void> {
  const [file, exportName = "default"] = job.name.split(":");
  const load = modules[`../convex/${file}.ts`];
  if (!load) throw new Error(`cron job ${job.name} has no module`);
  const func = ((await load()) as Record<string, { isAction?: boolean }>)[exportName];
  const args = ((Array.isArray(job.args) ? job.args[0] : job.args) ?? {}) as Record<string, unknown>;
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  try {
    if (func?.isAction) await t.action(makeFunctionReference<"action">(job.name), args);
    else await t.mutation(makeFunctionReference<"mutation">(job.name), args);
    // runAfter(0) only: advancing by 0 ms never fires the HTTP client's own timeouts.
    await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0), 1_000_000);
  } finally {
    vi.useRealTimers();
  }
}

test("one sync cron cycle, cold: executions and PBKDF2 per connection and per project", async () => {
  const t = harness.backend();
  const owner = t.withIdentity(identity("alice"));
  const connectionIds: Id<"connections">[] = [];
  const seedStarted = performance.now();
  for (let p = 0; p < PROJECTS; p++) {
    const projectId = await owner.mutation(api.projects.create, { name: `Project ${p}` });
    for (let c = 0; c < PER_PROJECT; c++) {
      connectionIds.push(
        await owner.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } }),
      );
    }
  }
  const seedMs = performance.now() - seedStarted;
  const jobs = Object.values(crons.crons);
  expect(jobs.length).toBeGreaterThan(0);
  const syncJob = jobs.find((job) => /sync/i.test(job.name)) ?? jobs[0]!;

  const started = performance.now();
  const { counts } = await harness.measure(() => runCronJob(t, syncJob));
  const cycleMs = performance.now() - started;

  const synced = await t.run(async (ctx) => {
    const rows = await ctx.db.query("connections").collect();
    return rows.filter((row) => row.lastSyncedAt !== undefined).length;
  });
  const connections = connectionIds.length;
  const byPath = new Map<string, number>();
  for (const execution of counts.executions) byPath.set(execution.path, (byPath.get(execution.path) ?? 0) + 1);
  const executionsPerConnection = counts.executions.length / connections;
  const pbkdf2PerProject = counts.pbkdf2 / PROJECTS;
  const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");

  print(
    [
      "",
      `Sync cron cycle, cold: ${connections} connections in ${PROJECTS} projects (seeded in ${(seedMs / 1000).toFixed(1)} s; cycle ${(cycleMs / 1000).toFixed(1)} s)`,
      table([
        ["measure", "this code", "per connection", "per project", "issue 8 target", ""],
        [
          "function executions",
          `${counts.executions.length}`,
          executionsPerConnection.toFixed(2),
          (counts.executions.length / PROJECTS).toFixed(1),
          "≤ 0.5 / connection",
          verdict(executionsPerConnection <= 0.5),
        ],
        ["PBKDF2 runs", `${counts.pbkdf2}`, (counts.pbkdf2 / connections).toFixed(2), pbkdf2PerProject.toFixed(2), "≤ 2 / project", verdict(pbkdf2PerProject <= 2)],
        ["connections synced", `${synced}`, "", "", `all ${connections}`, verdict(synced === connections)],
      ]),
      `per-connection design (before issue 8): ≥ 4 executions per connection (${4 * connections} here) and 1 PBKDF2 per connection under v2 (2 under v1: ${2 * connections})`,
      `module loads: ${counts.loads.length} (convex-test resolves a scheduled function's module twice; executions count each run once)`,
      "executions by function: " + [...byPath].map(([path, n]) => `${path} ×${n}`).join(", "),
      "",
    ].join("\n"),
  );
});
