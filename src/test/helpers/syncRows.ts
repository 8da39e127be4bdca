/** Shared by the sync tests (src/test/sync/): a project with one connection, and reads of its rows. */
import { ConvexError } from "convex/values";
import { expect, vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { identity, type Backend } from "./convex";
import { seedConnection, seedProject } from "./seed";
import { SECRETS, expectNoSecrets } from "./secrets";

export const GITHUB = { token: SECRETS.githubToken, repository: SECRETS.githubRepository };

/** A project (alice a member, bob its owner) with one connection of `service`. */
export async function setup(t: Backend, service = "github", credentials: Record<string, string> = GITHUB) {
  const { projectId, userIds } = await seedProject(t, { alice: "member", bob: "owner" });
  const connectionId = await seedConnection(t, projectId, service, credentials);
  return { projectId, userIds, connectionId, alice: t.withIdentity(identity("alice")) };
}

export function connection(t: Backend, connectionId: Id<"connections">) {
  return t.run(async (ctx) => (await ctx.db.get("connections", connectionId))!);
}

export function metricsOf(t: Backend, connectionId: Id<"connections">) {
  return t.run((ctx) =>
    ctx.db
      .query("metrics")
      .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connectionId))
      .collect(),
  );
}

export function auditOf(t: Backend, targetId: string) {
  return t.run((ctx) =>
    ctx.db
      .query("auditLog")
      .withIndex("by_targetId_and_at", (q) => q.eq("targetId", targetId))
      .collect(),
  );
}

/** The ConvexError `promise` rejects with, checked to hold no secret. */
export async function errorOf(promise: Promise<unknown>): Promise<ConvexError<{ code: string; message: string }>> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConvexError);
  expectNoSecrets(error);
  return error as ConvexError<{ code: string; message: string }>;
}

/**
 * Runs one cron run to completion under fake timers. Timers advance by 0 ms:
 * the run only uses runAfter(0), and vi.runAllTimers would also fire the
 * HTTP client's own connect timeout (10 s) while a real request is open.
 */
export async function runCron(t: Backend, args: { groupsLeft?: number } = {}): Promise<void> {
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  await t.mutation(internal.sync.schedule.scheduleDueSyncs, args);
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
}
