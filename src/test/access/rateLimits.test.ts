// Public actions that call third-party services are rate limited: per
// connection, project and user for manual syncs, per user for AI insights
// and key checks.
// Refused calls reach no provider.
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import { errorOf } from "../helpers/api";
import { identity, newBackend, type Backend } from "../helpers/convex";
import { seedAiKey, seedConnection, seedProject, seedUser } from "../helpers/seed";

const STRIPE = { secretKey: "sk_live_ratelimit000000000000004242" };

let t: Backend;
let projectId: Id<"projects">;
let userIds: Record<string, Id<"users">>;

beforeEach(async () => {
  // Every provider is a closed local port: calls that get through fail fast.
  for (const name of ["STRIPE_API_BASE_URL", "OPENAI_API_BASE_URL", "ANTHROPIC_API_BASE_URL"]) {
    vi.stubEnv(name, "http://127.0.0.1:9");
  }
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
  t = newBackend();
  ({ projectId, userIds } = await seedProject(t, { alice: "owner", bob: "member" }));
});

afterEach(() => {
  vi.useRealTimers();
});

/** Calls `call` until it is refused; the number of calls let through. */
async function allowedBeforeRefusal(call: () => Promise<unknown>, atMost = 20): Promise<number> {
  for (let allowed = 0; allowed < atMost; allowed++) {
    const refused = await call().then(
      () => false,
      (error: unknown) => error instanceof Error && JSON.stringify((error as { data?: unknown }).data ?? "").includes("RATE_LIMITED"),
    );
    if (refused) return allowed;
  }
  return atMost;
}

test("manual syncs: a burst of 6 per connection, shared by all members, then one every 10 s", async () => {
  const first = await seedConnection(t, projectId, "stripe", STRIPE);
  const second = await seedConnection(t, projectId, "stripe", STRIPE);
  const alice = t.withIdentity(identity("alice"));
  const bob = t.withIdentity(identity("bob"));

  for (let i = 0; i < 3; i++) await alice.action(api.connections.syncMetrics, { connectionId: first });
  for (let i = 0; i < 3; i++) await bob.action(api.connections.syncMetrics, { connectionId: first });
  const refusal = await errorOf(alice.action(api.connections.syncMetrics, { connectionId: first }));
  expect(refusal.code).toBe("RATE_LIMITED");
  expect(refusal.message).toMatch(/try again in \d+ s/);

  // Another connection has its own bucket.
  expect(await alice.action(api.connections.syncMetrics, { connectionId: second })).toMatchObject({ status: "error" });

  vi.setSystemTime(Date.now() + 10_000);
  await alice.action(api.connections.syncMetrics, { connectionId: first });
  expect((await errorOf(alice.action(api.connections.syncMetrics, { connectionId: first }))).code).toBe("RATE_LIMITED");
});

test("manual syncs do not multiply with connections: 12 per project and 12 per user, re-creating a connection resets nothing", async () => {
  // The same Stripe key in 8 connections over 2 projects, which alice and bob both belong to.
  const { projectId: secondProjectId } = await seedProject(t, { carol: "owner" });
  await t.run(async (ctx) => {
    for (const userId of [userIds.alice!, userIds.bob!]) {
      await ctx.db.insert("projectMembers", { projectId: secondProjectId, userId, role: "member", createdAt: Date.now() });
    }
  });
  const connections: Id<"connections">[] = [];
  for (const project of [projectId, secondProjectId]) {
    for (let i = 0; i < 4; i++) connections.push(await seedConnection(t, project, "stripe", STRIPE));
  }
  /** Manual syncs let through when `caller` tries every connection 6 times (the per-connection burst). */
  const allowedRound = async (caller: ReturnType<Backend["withIdentity"]>) => {
    let allowed = 0;
    for (let round = 0; round < 6; round++) {
      for (const connectionId of connections) {
        allowed += await caller.action(api.connections.syncMetrics, { connectionId }).then(
          () => 1,
          () => 0,
        );
      }
    }
    return allowed;
  };

  // One user: their own bucket (12), not 8 connections × 6 = 48.
  expect(await allowedRound(t.withIdentity(identity("alice")))).toBe(12);
  // Any number of users: each project's bucket (12 per project), 24 in all.
  expect(await allowedRound(t.withIdentity(identity("bob")))).toBe(12);
  expect(await allowedRound(t.withIdentity(identity("carol")))).toBe(0);

  // Removing and re-creating a connection gives it a fresh connection bucket, but not its project a fresh one.
  await t.run((ctx) => ctx.db.delete("connections", connections[0]!));
  const recreated = await seedConnection(t, projectId, "stripe", STRIPE);
  // Erin just joined: her user bucket and the new connection's bucket are full; the project's is not.
  const erinId = await seedUser(t, "erin");
  await t.run((ctx) => ctx.db.insert("projectMembers", { projectId, userId: erinId, role: "member", createdAt: Date.now() }));
  const erin = t.withIdentity(identity("erin"));
  expect((await errorOf(erin.action(api.connections.syncMetrics, { connectionId: recreated }))).code).toBe("RATE_LIMITED");

  // Then the project refills at one every 5 s.
  vi.setSystemTime(Date.now() + 5_000);
  expect(await erin.action(api.connections.syncMetrics, { connectionId: recreated })).toMatchObject({ status: "error" });
});

test("a refused sync changes nothing on the connection", async () => {
  const connectionId = await seedConnection(t, projectId, "stripe", STRIPE);
  const alice = t.withIdentity(identity("alice"));
  expect(await allowedBeforeRefusal(() => alice.action(api.connections.syncMetrics, { connectionId }))).toBe(6);
  const before = await t.run((ctx) => ctx.db.get("connections", connectionId));
  await errorOf(alice.action(api.connections.syncMetrics, { connectionId }));
  expect(await t.run((ctx) => ctx.db.get("connections", connectionId))).toEqual(before);
});

test("AI insights: a burst of 5 per user; other users keep theirs", async () => {
  const connectionId = await seedConnection(t, projectId, "stripe", STRIPE);
  await t.run((ctx) => ctx.db.insert("metrics", { connectionId, projectId, name: "balance.available.usd", value: 1, timestamp: 1 }));
  await seedAiKey(t, userIds.alice!, "openai", "sk-alice0000000000000000000000");
  await seedAiKey(t, userIds.bob!, "openai", "sk-bob000000000000000000000000");
  const alice = t.withIdentity(identity("alice"));
  const bob = t.withIdentity(identity("bob"));

  // Each allowed call reaches the (closed) provider and fails with PROVIDER_ERROR.
  expect(await allowedBeforeRefusal(() => alice.action(api.ai.generateInsight, { projectId }))).toBe(5);
  expect((await errorOf(bob.action(api.ai.generateInsight, { projectId }))).code).toBe("PROVIDER_ERROR");
});

test("AI key checks: a burst of 5 per user", async () => {
  const carol = t.withIdentity(identity("carol"));
  const dave = t.withIdentity(identity("dave"));
  const check = (caller: typeof carol) => caller.action(api.ai.verifyKey, { provider: "openai", apiKey: "sk-check000000000000000000000" });
  expect(await allowedBeforeRefusal(() => check(carol))).toBe(5);
  expect(await check(dave)).toMatchObject({ valid: false });
});
