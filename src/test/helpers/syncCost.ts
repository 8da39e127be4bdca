/**
 * Counting the real cost of a sync cycle, cold as in production: a backend
 * whose every function execution (each query, mutation, action, nested call
 * and scheduled function) loads a fresh module graph (vi.resetModules), so no
 * module-level cache (derived keys, key ids) survives from one execution to
 * the next; it counts those executions, and PBKDF2 runs at crypto.subtle,
 * with the shared cold harness (helpers/cold.ts). Counts, never times.
 */
import { onTestFinished, vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import { NOT_SCHEDULED } from "../../convex/sync/policy";
import type { Id } from "../../convex/_generated/dataModel";
import { ColdHarness, type ColdBackend as HarnessBackend } from "./cold";
import { deploymentKeyring, seedConnection, seedProject } from "./seed";
import type { FakeProviders } from "./fakeProviders";
import { SECRETS } from "./secrets";

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

/** Function executions and PBKDF2 runs since the counter was created or reset. */
export interface CostCounter {
  readonly executions: number;
  readonly pbkdf2: number;
  /** Executions per function path ("sync/run:syncGroup"). */
  readonly byFunction: Record<string, number>;
  reset(): void;
}

/**
 * A backend on the shared cold harness (helpers/cold.ts: a fresh module
 * graph per function execution, each execution counted once, PBKDF2 counted
 * at crypto.subtle), and its counter. Call inside a test: crypto.subtle is
 * restored when the test finishes.
 */
export function newColdBackend() {
  const harness = new ColdHarness();
  harness.install();
  onTestFinished(() => harness.uninstall());
  const counter: CostCounter = {
    get executions() {
      return harness.counts.executions.length;
    },
    get pbkdf2() {
      return harness.counts.pbkdf2;
    },
    get byFunction() {
      const counts: Record<string, number> = {};
      for (const { path } of harness.counts.executions) counts[path] = (counts[path] ?? 0) + 1;
      return counts;
    },
    reset() {
      harness.reset();
    },
  };
  return { t: harness.backend(), counter };
}

export type ColdBackend = HarnessBackend;

/** What one cron cycle cost and did. */
export interface CycleCost {
  connections: number;
  projects: number;
  executions: number;
  pbkdf2: number;
  providerRequests: number;
  /** Connections that got exactly one successful sync (metrics stored, lastSyncedAt set). */
  syncedOnce: number;
  /** Connections whose sync ran and stored an outcome (a success, or a failure counted in syncFailures). */
  attempted: number;
  /** Why the others were not synced: their lastError ("never attempted" when none), and how many. */
  notSynced: Record<string, number>;
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
 * Runs one cron run (sync/schedule.ts scheduleDueSyncs and everything it
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
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  counter.reset();
  await t.mutation(internal.sync.schedule.scheduleDueSyncs, {});
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
  const { pbkdf2, executions } = counter;
  vi.useRealTimers();
  const { syncedOnce, attempted, notSynced } = await t.run(async (ctx) => {
    let synced = 0;
    let tried = 0;
    const reasons: Record<string, number> = {};
    for (const id of ids) {
      const row = await ctx.db.get("connections", id);
      const points = await ctx.db
        .query("metrics")
        .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", id))
        .collect();
      if (row?.lastSyncedAt !== undefined || (row?.syncFailures ?? 0) > 0) tried++;
      if (row?.status === "active" && row.lastSyncedAt !== undefined && points.length === 4) {
        synced++;
      } else {
        const reason = row?.lastError ?? "never attempted";
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
    }
    return { syncedOnce: synced, attempted: tried, notSynced: reasons };
  });
  return {
    connections: ids.length,
    projects,
    executions,
    pbkdf2,
    providerRequests: fake.requests.length - requestsBefore,
    syncedOnce,
    attempted,
    notSynced,
  };
}

/**
 * `projects` projects of `perProject` GitHub connections each, every project
 * owned by its own user, seeded with one keyring (one PBKDF2 for the whole
 * fleet, so 1,000 projects seed quickly). Never synced: all due.
 */
export async function seedFleetFast(t: ColdBackend, projects: number, perProject: number): Promise<Id<"connections">[]> {
  const credentials = { token: SECRETS.githubToken, repository: SECRETS.githubRepository };
  const keyring = await deploymentKeyring(t);
  const ids: Id<"connections">[] = [];
  for (let p = 0; p < projects; p++) {
    const { projectId } = await seedProject(t, { [`owner${p}`]: "owner" });
    for (let c = 0; c < perProject; c++) ids.push(await seedConnection(t, projectId, "github", credentials, "active", keyring));
  }
  return ids;
}

/** What a connection whose provider always answers `status` costs over 24 hours of cron runs. */
export interface FailingDayCost {
  providerRequests: number;
  executions: number;
  pbkdf2: number;
  /** The connection's status at the end of the day, and its lastError. */
  status: string;
  lastError: string | undefined;
  /** Whether the connection is still scheduled (nextSyncAt set) at the end. */
  stillScheduled: boolean;
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/**
 * Plays 24 hours of the every-minute cron (sync/schedule.ts scheduleDueSyncs) for
 * one connection: runs only the minutes at which the connection is due (a
 * run with nothing due reads an empty index range and schedules nothing, so
 * skipping those is exact) and counts provider requests and executions.
 */
export async function measureFailingDay(
  t: ColdBackend,
  counter: CostCounter,
  fake: FakeProviders,
  connectionId: Id<"connections">,
): Promise<FailingDayCost> {
  const requestsBefore = fake.requests.length;
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  counter.reset();
  const start = Date.now();
  for (;;) {
    await t.mutation(internal.sync.schedule.scheduleDueSyncs, {});
    await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
    const row = await t.run((ctx) => ctx.db.get("connections", connectionId));
    const next = row?.nextSyncAt;
    if (next === undefined || next >= NOT_SCHEDULED) break;
    const nextRun = Math.max(Date.now() + MINUTE_MS, Math.ceil(next / MINUTE_MS) * MINUTE_MS);
    if (nextRun > start + DAY_MS) break;
    vi.setSystemTime(nextRun);
  }
  const { executions, pbkdf2 } = counter;
  vi.useRealTimers();
  const row = await t.run((ctx) => ctx.db.get("connections", connectionId));
  return {
    providerRequests: fake.requests.length - requestsBefore,
    executions,
    pbkdf2,
    status: row?.status ?? "gone",
    lastError: row?.lastError,
    stillScheduled: row?.nextSyncAt !== undefined && row.nextSyncAt < NOT_SCHEDULED,
  };
}

/**
 * Failures a cycle in convex-test may meet that say nothing about the sync
 * engine: every group action of the cycle runs at once on this process's one
 * event loop (Convex runs each in its own isolate, queueing beyond its
 * concurrency limit), with the fake provider on the same loop, so with
 * hundreds of requests in flight a provider answer can wait longer than
 * PROVIDER_TIMEOUT_MS of real time.
 */
export const HARNESS_TRANSIENT_ERRORS = ["GitHub did not answer in time"];

/**
 * "synced N/M in one run", and, when some were not, why: each lastError
 * with its count, and what a timeout means here (HARNESS_TRANSIENT_ERRORS).
 */
export function describeSynced(cost: CycleCost): string {
  const line = `synced ${cost.syncedOnce}/${cost.connections} in one run`;
  const reasons = Object.entries(cost.notSynced);
  if (reasons.length === 0) return line;
  const listed = reasons.map(([reason, count]) => `${count} "${reason}"`).join(", ");
  return (
    `${line} (${cost.attempted}/${cost.connections} attempted; not synced: ${listed}: ` +
    `convex-test runs the cycle's group actions at once on one event loop with the fake provider, ` +
    `${cost.providerRequests} requests reached it; a transient failure backs off and syncs at a later slot)`
  );
}
