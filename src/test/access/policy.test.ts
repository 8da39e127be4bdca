// access/: the one non-throwing role lookup and its throwing wrapper, the one
// RATE_LIMITED error, and the manual-sync buckets of removed rows forgotten
// through the rate-limit library (never by touching its table).
import { ConvexError } from "convex/values";
import { afterEach, describe, expect, test, vi } from "vitest";
import { api } from "../../convex/_generated/api";
import { findUserByToken } from "../../convex/access/identity";
import { forgetBucketsOf, rateLimited, retryAfterSeconds, takeManualSync } from "../../convex/access/rateLimits";
import { findProjectRole, requireProjectRole } from "../../convex/access/roles";
import type { AppErrorData } from "../../convex/errors";
import { identity, newBackend } from "../helpers/convex";
import { seedConnection, seedProject, seedUser } from "../helpers/seed";

afterEach(() => {
  vi.useRealTimers();
});

describe("findProjectRole answers, requireProjectRole refuses: the same lookup", () => {
  test("each case: found with the role or above; null (and NOT_FOUND / FORBIDDEN) otherwise", async () => {
    const t = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner", bob: "admin", carol: "member" });
    const mallory = await seedUser(t, "mallory");
    const gone = await t.run(async (ctx) => {
      const id = await ctx.db.insert("projects", { name: "Gone", createdBy: userIds.alice!, createdAt: Date.now() });
      await ctx.db.delete("projects", id);
      return id;
    });
    const cases = [
      { userId: userIds.bob!, projectId, minimum: "admin", found: true, code: null },
      { userId: userIds.alice!, projectId, minimum: "admin", found: true, code: null },
      { userId: userIds.carol!, projectId, minimum: "admin", found: false, code: "FORBIDDEN" },
      { userId: mallory, projectId, minimum: "member", found: false, code: "FORBIDDEN" },
      { userId: null, projectId, minimum: "member", found: false, code: "FORBIDDEN" },
      { userId: userIds.alice!, projectId: gone, minimum: "member", found: false, code: "NOT_FOUND" },
    ] as const;
    for (const each of cases) {
      const [found, thrown] = await t.run(async (ctx) => {
        const answer = await findProjectRole(ctx, each.userId, each.projectId, each.minimum);
        const code = await requireProjectRole(ctx, each.userId, each.projectId, each.minimum).then(
          () => null,
          (error: unknown) => (error instanceof ConvexError ? (error.data as AppErrorData).code : "other"),
        );
        return [answer && { projectId: answer.project._id, userId: answer.membership.userId }, code] as const;
      });
      expect(found, JSON.stringify(each)).toEqual(each.found ? { projectId, userId: each.userId } : null);
      expect(thrown, JSON.stringify(each)).toBe(each.code);
    }
  });
});

test("the one users-by-token lookup finds the row users.store created, and null for an unknown token", async () => {
  const t = newBackend();
  const { userId } = await t.withIdentity(identity("alice")).mutation(api.users.store, {});
  const { issuer, subject } = identity("alice");
  expect(await t.run(async (ctx) => (await findUserByToken(ctx, `${issuer}|${subject}`))?._id)).toBe(userId);
  expect(await t.run((ctx) => findUserByToken(ctx, "nobody"))).toBeNull();
});

describe("rateLimited: the one RATE_LIMITED", () => {
  test("retryAt in whole milliseconds, the wait in whole seconds (at least 1), no cause", () => {
    vi.useFakeTimers({ toFake: ["Date"], now: 1_000_000 });
    const error = rateLimited(1_000_000 + 2_500.2, "Too many requests");
    expect(error.data).toEqual({ code: "RATE_LIMITED", message: "Too many requests; try again in 3 s", retryAt: 1_002_501 });
    expect(error.cause).toBeUndefined();
    expect(retryAfterSeconds(1_000_000 + 10, 1_000_000)).toBe(1);
    expect(retryAfterSeconds(1_000_000 - 5_000, 1_000_000)).toBe(1);
    expect(retryAfterSeconds(1_000_000 + 60_000, 1_000_000)).toBe(60);
  });
});

describe("removed rows forget their manual-sync buckets through the library", () => {
  test("a connection's bucket, then its project's; the user's stays (3 buckets to 1)", async () => {
    const t = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner" });
    const connectionId = await seedConnection(t, projectId, "stripe", { secretKey: "sk_test_policy000000000000000" });
    const keys = { connectionId, projectId, userId: userIds.alice! };
    expect(await t.run((ctx) => takeManualSync(ctx, keys))).toBe(true);
    const buckets = async () => (await t.run((ctx) => ctx.db.query("rateLimits").collect())).map(({ name, key }) => `${name}:${key}`).sort();
    expect(await buckets()).toEqual([`manualSync:${connectionId}`, `manualSyncProject:${projectId}`, `manualSyncUser:${userIds.alice}`].sort());
    await t.run((ctx) => forgetBucketsOf(ctx, { connectionId }));
    expect(await buckets()).toEqual([`manualSyncProject:${projectId}`, `manualSyncUser:${userIds.alice}`].sort());
    await t.run((ctx) => forgetBucketsOf(ctx, { projectId }));
    expect(await buckets()).toEqual([`manualSyncUser:${userIds.alice}`]);
  });

  test("projects.remove: once its batches ran, no bucket of the project or its connection is left", async () => {
    const t = newBackend();
    const owner = t.withIdentity(identity("alice"));
    const { userId } = await owner.mutation(api.users.store, {});
    const projectId = await owner.mutation(api.projects.create, { name: "Doomed" });
    const connectionId = await seedConnection(t, projectId, "stripe", { secretKey: "sk_test_policy000000000000001" });
    await t.run((ctx) => takeManualSync(ctx, { connectionId, projectId, userId }));
    expect((await t.run((ctx) => ctx.db.query("rateLimits").collect())).length).toBe(3);
    await owner.mutation(api.projects.remove, { projectId });
    vi.useFakeTimers();
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect((await t.run((ctx) => ctx.db.query("rateLimits").collect())).map(({ name }) => name)).toEqual(["manualSyncUser"]);
  });
});
