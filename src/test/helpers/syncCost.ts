/**
 * Counting the real cost of a sync cycle, cold as in production: a backend
 * whose every function execution (each query, mutation, action, nested call
 * and scheduled function) loads a fresh module graph (vi.resetModules), so no
 * module-level cache (derived keys, key ids) survives from one execution to
 * the next; it counts those executions, and PBKDF2 runs at crypto.subtle.
 * A minimal stand-in for a shared cold harness: counts, never times.
 */

/**
 * What the previous design (one scheduled action per connection, each with
 * loadForSync, audit.record and recordSyncOutcome; cron pages of 20 per
 * status) costs for one cycle over `connections` due connections, cold:
 * 4 executions per connection plus the pages, and 2 PBKDF2 per connection
 * (key id and project key, in each connection's own action).
 */
export function previousDesignCost(connections: number): { executions: number; pbkdf2: number } {
  const pages = Math.floor(connections / 20) + 3; // the active pages, plus one closing page per status
  return { executions: 4 * connections + pages, pbkdf2: 2 * connections };
}
import { convexTest } from "convex-test";
import { vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import schema from "../../convex/schema";
import { seedConnection, seedProject } from "./seed";
import type { FakeProviders } from "./fakeProviders";
import { SECRETS } from "./secrets";

const modules = import.meta.glob("../../convex/**/*.ts");

/** The unspied WebCrypto derivations (a later backend re-spies them; its spy must not call an earlier one). */
const derive = {
  deriveBits: crypto.subtle.deriveBits.bind(crypto.subtle) as (...args: unknown[]) => Promise<unknown>,
  deriveKey: crypto.subtle.deriveKey.bind(crypto.subtle) as (...args: unknown[]) => Promise<unknown>,
};

/** Function executions and PBKDF2 runs since the counter was created or reset. */
export interface CostCounter {
  executions: number;
  pbkdf2: number;
  /** Executions per module path. */
  byModule: Record<string, number>;
  reset(): void;
}

/** A convex-test backend that runs every function execution cold, and its counter. */
export function newColdBackend() {
  const counter: CostCounter = {
    executions: 0,
    pbkdf2: 0,
    byModule: {},
    reset() {
      this.executions = 0;
      this.pbkdf2 = 0;
      this.byModule = {};
    },
  };
  // Loads run one after another: two overlapping loads could otherwise share one fresh module graph
  // (and its caches), which would undercount.
  let previousLoad: Promise<unknown> = Promise.resolve();
  const cold = Object.fromEntries(
    Object.entries(modules).map(([path, load]) => [
      path,
      () => {
        // convex-test loads a function's module once per execution, and once more before running a
        // scheduled function (to learn its type): measureCycle subtracts those.
        if (!path.includes("/_generated/")) counter.executions++;
        counter.byModule[path] = (counter.byModule[path] ?? 0) + 1;
        const loaded = previousLoad.then(() => {
          vi.resetModules();
          return load();
        });
        previousLoad = loaded.catch(() => undefined);
        return loaded;
      },
    ]),
  );
  for (const method of ["deriveBits", "deriveKey"] as const) {
    const original = derive[method];
    vi.spyOn(crypto.subtle, method).mockImplementation(((algorithm: AlgorithmIdentifier, ...rest: unknown[]) => {
      const name = typeof algorithm === "string" ? algorithm : algorithm.name;
      if (name.toUpperCase() === "PBKDF2") counter.pbkdf2++;
      return original(algorithm, ...rest);
    }) as never);
  }
  return { t: convexTest(schema, cold), counter };
}

export type ColdBackend = ReturnType<typeof newColdBackend>["t"];

/** What one cron cycle cost and did. */
export interface CycleCost {
  connections: number;
  projects: number;
  executions: number;
  pbkdf2: number;
  providerRequests: number;
  /** Connections that got exactly one successful sync (metrics stored, lastSyncedAt set). */
  syncedOnce: number;
}

/** `projects` projects of `perProject` GitHub connections each, never synced (no nextSyncAt: due). */
export async function seedSyncFleet(t: ColdBackend, projects: number, perProject: number): Promise<Id<"connections">[]> {
  const credentials = { token: SECRETS.githubToken, repository: SECRETS.githubRepository };
  const ids: Id<"connections">[] = [];
  for (let p = 0; p < projects; p++) {
    const { projectId } = await seedProject(t, { [`owner${p}`]: "owner" });
    for (let c = 0; c < perProject; c++) ids.push(await seedConnection(t, projectId, "github", credentials, "active"));
  }
  return ids;
}

/**
 * Runs one cron run (metricsSync.scheduleDueSyncs and everything it
 * schedules) to completion under fake timers and returns its counted cost.
 */
export async function measureCycle(
  t: ColdBackend,
  counter: CostCounter,
  fake: FakeProviders,
  ids: readonly Id<"connections">[],
  projects: number,
): Promise<CycleCost> {
  const requestsBefore = fake.requests.length;
  const scheduledJobs = () => t.run(async (ctx) => (await ctx.db.system.query("_scheduled_functions").collect()).length);
  const jobsBefore = await scheduledJobs();
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  counter.reset();
  await t.mutation(internal.metricsSync.scheduleDueSyncs, {});
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
  const { pbkdf2 } = counter;
  vi.useRealTimers();
  const executions = counter.executions - ((await scheduledJobs()) - jobsBefore);
  const syncedOnce = await t.run(async (ctx) => {
    let count = 0;
    for (const id of ids) {
      const row = await ctx.db.get("connections", id);
      const points = await ctx.db
        .query("metrics")
        .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", id))
        .collect();
      if (row?.status === "active" && row.lastSyncedAt !== undefined && points.length === 4) count++;
    }
    return count;
  });
  return {
    connections: ids.length,
    projects,
    executions,
    pbkdf2,
    providerRequests: fake.requests.length - requestsBefore,
    syncedOnce,
  };
}
