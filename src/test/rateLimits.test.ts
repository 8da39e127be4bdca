// Public actions that call third-party services are rate limited: per
// connection for manual syncs, per user for AI insights and key checks.
// Refused calls reach no provider.
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { errorOf } from "./helpers/api";
import { identity, newBackend, type Backend } from "./helpers/convex";
import { seedAiKey, seedConnection, seedProject } from "./helpers/seed";

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
