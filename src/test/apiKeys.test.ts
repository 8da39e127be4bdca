import { beforeEach, describe, expect, test } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { LAST_USED_RESOLUTION_MS, MAX_API_KEYS_LISTED, MAX_LIVE_API_KEYS } from "../convex/apiKeys";
import { sha256Hex } from "../convex/lib/hash";
import { errorOf, everythingStored, projectWithEveryRole, userIdOf, type ProjectFixture } from "./helpers/api";
import { newBackend, type Backend } from "./helpers/convex";

const METRICS_PATH = "/api/v1/projects/metrics";

let t: Backend;
let project: ProjectFixture;

beforeEach(async () => {
  t = newBackend();
  project = await projectWithEveryRole(t);
});

function createKey(name = "CI") {
  return project.admin.mutation(api.apiKeys.create, { projectId: project.projectId, name });
}

function fetchMetrics(authorization?: string) {
  return t.fetch(METRICS_PATH, { method: "GET", headers: authorization ? { Authorization: authorization } : {} });
}

describe("create and list", () => {
  test("returns a dt_live_ key with 32 random bytes, stored only as its SHA-256 hash and a display prefix", async () => {
    const { apiKeyId, apiKey } = await createKey();
    expect(apiKey).toMatch(/^dt_live_[A-Za-z0-9_-]{43}$/);
    const stored = await t.run((ctx) => ctx.db.get("apiKeys", apiKeyId));
    expect(stored?.keyHash).toBe(await sha256Hex(apiKey));
    expect(stored?.prefix).toBe(apiKey.slice(0, 12));
    expect(await everythingStored(t)).not.toContain(apiKey);
  });

  test("every key is different", async () => {
    const keys = await Promise.all([createKey("a"), createKey("b"), createKey("c")]);
    expect(new Set(keys.map((key) => key.apiKey)).size).toBe(3);
  });

  test("list shows name, prefix and usage, never the key or its hash, newest first", async () => {
    const first = await createKey("first");
    const second = await createKey("second");
    const listed = await project.member.query(api.apiKeys.list, { projectId: project.projectId });
    expect(listed.map((key) => [key.apiKeyId, key.name, key.prefix])).toEqual([
      [second.apiKeyId, "second", second.apiKey.slice(0, 12)],
      [first.apiKeyId, "first", first.apiKey.slice(0, 12)],
    ]);
    const text = JSON.stringify(listed);
    for (const key of [first, second]) {
      expect(text).not.toContain(key.apiKey);
      expect(text).not.toContain(await sha256Hex(key.apiKey));
    }
  });

  test.each([[""], [" \t "], ["n".repeat(101)]])("refuses the name %j with INVALID_ARGUMENT", async (name) => {
    expect((await errorOf(createKey(name))).code).toBe("INVALID_ARGUMENT");
  });

  test(`a project has at most ${MAX_LIVE_API_KEYS} live keys (CONFLICT); revoking one makes room`, async () => {
    const created = [];
    for (let i = 0; i < MAX_LIVE_API_KEYS; i++) created.push(await createKey(`key ${i}`));
    const error = await errorOf(createKey("one too many"));
    expect(error.code).toBe("CONFLICT");
    expect(error.message).toContain(`${MAX_LIVE_API_KEYS} API keys`);
    await project.admin.mutation(api.apiKeys.revoke, { apiKeyId: created[0]!.apiKeyId });
    await createKey("replacement");
    expect((await errorOf(createKey("one too many again"))).code).toBe("CONFLICT");
    const otherProjectId = await project.owner.mutation(api.projects.create, { name: "Other" });
    await project.owner.mutation(api.apiKeys.create, { projectId: otherProjectId, name: "elsewhere" });
  });

  test("list shows every live key, newest first, before the most recently revoked ones, however many were revoked", async () => {
    const older = await createKey("older live");
    const newer = await createKey("newer live");
    const revokedCount = MAX_API_KEYS_LISTED + 20;
    // Revoked keys created after the live ones, inserted directly to keep the test fast.
    await t.run(async (ctx) => {
      for (let i = 0; i < revokedCount; i++) {
        await ctx.db.insert("apiKeys", {
          projectId: project.projectId,
          name: `revoked ${i}`,
          keyHash: await sha256Hex(`revoked key ${i}`),
          prefix: "dt_live_xxxx",
          createdAt: Date.now(),
          revokedAt: 1_000 + i,
        });
      }
    });
    const listed = await project.member.query(api.apiKeys.list, { projectId: project.projectId });
    expect(listed).toHaveLength(MAX_API_KEYS_LISTED);
    expect(listed.slice(0, 2).map((key) => key.apiKeyId)).toEqual([newer.apiKeyId, older.apiKeyId]);
    const revokedAt = listed.slice(2).map((key) => key.revokedAt);
    const newestRevocations = Array.from({ length: MAX_API_KEYS_LISTED - 2 }, (_, i) => 1_000 + revokedCount - 1 - i);
    expect(revokedAt).toEqual(newestRevocations);
  });
});

describe("removing a member", () => {
  test("revokes, in the same mutation, the live keys they created in that project, and says why in the audit log", async () => {
    const bobsKey = await createKey("bob's CI");
    const alicesKey = await project.owner.mutation(api.apiKeys.create, { projectId: project.projectId, name: "alice's CI" });
    const otherProjectId = await project.admin.mutation(api.projects.create, { name: "Bob's own" });
    const bobsOtherKey = await project.admin.mutation(api.apiKeys.create, { projectId: otherProjectId, name: "elsewhere" });
    const bobId = await userIdOf(t, "bob");

    await project.owner.mutation(api.projects.removeMember, { projectId: project.projectId, userId: bobId });

    expect((await fetchMetrics(`Bearer ${bobsKey.apiKey}`)).status).toBe(401);
    expect((await fetchMetrics(`Bearer ${alicesKey.apiKey}`)).status).toBe(200);
    expect((await fetchMetrics(`Bearer ${bobsOtherKey.apiKey}`)).status).toBe(200);
    const listed = await project.member.query(api.apiKeys.list, { projectId: project.projectId });
    expect(listed.map((key) => [key.apiKeyId, key.revokedAt !== undefined])).toEqual([
      [alicesKey.apiKeyId, false],
      [bobsKey.apiKeyId, true],
    ]);
    const aliceId = await userIdOf(t, "alice");
    const entries = await t.run((ctx) =>
      ctx.db
        .query("auditLog")
        .withIndex("by_targetId_and_at", (q) => q.eq("targetId", bobsKey.apiKeyId))
        .collect(),
    );
    expect(entries.map((entry) => [entry.action, entry.actorId, entry.detail])).toEqual([
      ["apiKey.created", bobId, undefined],
      ["apiKey.revoked", aliceId, "its creator was removed from the project"],
    ]);
  });

  test("keeps the revocation time of keys they had revoked already", async () => {
    const { apiKeyId } = await createKey();
    await project.admin.mutation(api.apiKeys.revoke, { apiKeyId });
    const revokedAt = (await t.run((ctx) => ctx.db.get("apiKeys", apiKeyId)))?.revokedAt;
    await project.owner.mutation(api.projects.removeMember, { projectId: project.projectId, userId: await userIdOf(t, "bob") });
    expect((await t.run((ctx) => ctx.db.get("apiKeys", apiKeyId)))?.revokedAt).toBe(revokedAt);
  });
});

describe("GET /api/v1/projects/metrics", () => {
  let connectionId: Id<"connections">;

  beforeEach(async () => {
    connectionId = await project.owner.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "stripe",
      credentials: { secretKey: "sk_live_HttpTestKey0000000000000000" },
    });
    await t.run(async (ctx) => {
      // Three syncs; each writes its points with one timestamp.
      const rows = [
        { name: "mrr", value: 100, timestamp: 1_000 },
        { name: "balance", value: 40, timestamp: 1_000 },
        { name: "mrr", value: 250, timestamp: 3_000 },
        { name: "balance", value: 42, timestamp: 3_000 },
        { name: "mrr", value: 175, timestamp: 2_000 },
        { name: "churn", value: 3, timestamp: 2_000 },
      ];
      for (const row of rows) await ctx.db.insert("metrics", { ...row, connectionId, projectId: project.projectId });
    });
  });

  test("returns the latest value of each metric of the key's project and records the use", async () => {
    const { apiKeyId, apiKey } = await createKey();
    const otherProjectId = await project.owner.mutation(api.projects.create, { name: "Other" });
    const otherConnection = await project.owner.mutation(api.connections.create, {
      projectId: otherProjectId,
      service: "stripe",
      credentials: { secretKey: "sk_live_OtherProjectKey0000000000" },
    });
    await t.run((ctx) =>
      ctx.db.insert("metrics", { connectionId: otherConnection, projectId: otherProjectId, name: "mrr", value: 9, timestamp: 9_000 }),
    );

    const response = await fetchMetrics(`Bearer ${apiKey}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { projectId: string; metrics: { name: string; value: number }[] };
    expect(body.projectId).toBe(project.projectId);
    expect(body.metrics).toEqual(
      expect.arrayContaining([
        { connectionId, name: "mrr", value: 250, timestamp: 3_000 },
        { connectionId, name: "balance", value: 42, timestamp: 3_000 },
      ]),
    );
    expect(body.metrics).toHaveLength(2);
    const [listed] = await project.member.query(api.apiKeys.list, { projectId: project.projectId });
    expect(listed?.apiKeyId).toBe(apiKeyId);
    expect(listed?.lastUsedAt).toEqual(expect.any(Number));
  });

  test("every connection's latest metrics are returned, however much newer history other connections have", async () => {
    const { apiKey } = await createKey();
    const busy = await project.owner.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "stripe",
      credentials: { secretKey: "sk_live_BusyConnectionKey000000000" },
    });
    // 40 syncs of 30 points each on the busy connection, all newer than the quiet connection's last sync.
    await t.run(async (ctx) => {
      for (let sync = 0; sync < 40; sync++) {
        for (let point = 0; point < 30; point++) {
          await ctx.db.insert("metrics", {
            connectionId: busy,
            projectId: project.projectId,
            name: `balance.available.c${point}`,
            value: sync,
            timestamp: 10_000 + sync,
          });
        }
      }
    });
    const body = (await (await fetchMetrics(`Bearer ${apiKey}`)).json()) as {
      metrics: { connectionId: string; name: string; value: number; timestamp: number }[];
    };
    const quiet = body.metrics.filter((metric) => metric.connectionId === connectionId);
    expect(quiet).toEqual(
      expect.arrayContaining([
        { connectionId, name: "mrr", value: 250, timestamp: 3_000 },
        { connectionId, name: "balance", value: 42, timestamp: 3_000 },
      ]),
    );
    const fromBusy = body.metrics.filter((metric) => metric.connectionId === busy);
    expect(fromBusy).toHaveLength(30);
    expect(fromBusy.every((metric) => metric.value === 39 && metric.timestamp === 10_039)).toBe(true);
  });

  test("exactly each connection's latest sync is served: a metric missing from it is not, however short the history", async () => {
    const { apiKey } = await createKey();
    const body = (await (await fetchMetrics(`Bearer ${apiKey}`)).json()) as { metrics: { name: string }[] };
    // "churn" came only in the sync at 2_000, not in the latest one at 3_000.
    expect(body.metrics.map((metric) => metric.name).sort()).toEqual(["balance", "mrr"]);
  });

  test("metrics of a removed connection are not served, even before their deletion finishes", async () => {
    const { apiKey } = await createKey();
    await project.admin.mutation(api.connections.remove, { connectionId });
    await t.run((ctx) =>
      ctx.db.insert("metrics", { connectionId, projectId: project.projectId, name: "straggler", value: 1, timestamp: 9_999 }),
    );
    const body = (await (await fetchMetrics(`Bearer ${apiKey}`)).json()) as { metrics: unknown[] };
    expect(body.metrics).toEqual([]);
  });

  test.each([
    ["no Authorization header", undefined],
    ["an empty bearer token", "Bearer "],
    ["another scheme", "Basic ZHQ6bGl2ZQ=="],
    ["an unknown key", "Bearer dt_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ["an unknown key without the dt_live_ prefix", "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ["an overlong token", `Bearer ${"A".repeat(201)}`],
  ])("answers %s with a bare 401", async (_case, authorization) => {
    const response = await fetchMetrics(authorization);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "unauthorized" });
  });

  test("a key issued by an older version (no dt_live_ prefix, stored hashed) still works", async () => {
    const legacyKey = "legacy0123456789abcdef0123456789abcdef";
    await t.run(async (ctx) =>
      ctx.db.insert("apiKeys", {
        projectId: project.projectId,
        name: "old key",
        keyHash: await sha256Hex(legacyKey),
        prefix: legacyKey.slice(0, 8),
        createdAt: 1,
      }),
    );
    const response = await fetchMetrics(`Bearer ${legacyKey}`);
    expect(response.status).toBe(200);
    expect((await response.json()).projectId).toBe(project.projectId);
  });

  test("a revoked key gets the same bare 401 at once; revoking twice is a no-op", async () => {
    const { apiKeyId, apiKey } = await createKey();
    expect((await fetchMetrics(`Bearer ${apiKey}`)).status).toBe(200);
    await project.admin.mutation(api.apiKeys.revoke, { apiKeyId });
    await project.owner.mutation(api.apiKeys.revoke, { apiKeyId });
    const response = await fetchMetrics(`Bearer ${apiKey}`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "unauthorized" });
    const [listed] = await project.member.query(api.apiKeys.list, { projectId: project.projectId });
    expect(listed?.revokedAt).toEqual(expect.any(Number));
    const revocations = await t.run((ctx) =>
      ctx.db
        .query("auditLog")
        .withIndex("by_targetId_and_at", (q) => q.eq("targetId", apiKeyId))
        .collect(),
    );
    expect(revocations.map((entry) => entry.action)).toEqual(["apiKey.created", "apiKey.revoked"]);
  });

  test("authenticates live keys only, in one mutation", async () => {
    const { apiKeyId, apiKey } = await createKey();
    const keyHash = await sha256Hex(apiKey);
    const authenticate = (hash: string) =>
      t.mutation(internal.apiKeys.authenticate, { keyHash: hash, source: "ip:192.0.2.1", prefix: apiKey.slice(0, 12) });
    expect(await authenticate(keyHash)).toEqual({ kind: "authenticated", projectId: project.projectId });
    expect(await authenticate(await sha256Hex(`${apiKey}x`))).toEqual({ kind: "unauthorized" });
    await project.admin.mutation(api.apiKeys.revoke, { apiKeyId });
    expect(await authenticate(keyHash)).toEqual({ kind: "unauthorized" });
  });

  test("a key of a removed project stops at once, before the removal's batches reach it", async () => {
    const { apiKeyId, apiKey } = await createKey();
    // Mid-removal of a big project: projects.remove deleted the row, a later batch deletes the keys.
    await t.run((ctx) => ctx.db.delete("projects", project.projectId));
    expect(await t.run((ctx) => ctx.db.get("apiKeys", apiKeyId))).not.toBeNull();
    const keyHash = await sha256Hex(apiKey);
    expect(await t.mutation(internal.apiKeys.authenticate, { keyHash, source: "ip:192.0.2.1", prefix: apiKey.slice(0, 12) })).toEqual({
      kind: "unauthorized",
    });
    expect((await fetchMetrics(`Bearer ${apiKey}`)).status).toBe(401);
  });

  test(`lastUsedAt is rewritten only when older than ${LAST_USED_RESOLUTION_MS / 1000} s`, async () => {
    const { apiKeyId, apiKey } = await createKey();
    const setLastUsedAt = (lastUsedAt: number) => t.run((ctx) => ctx.db.patch("apiKeys", apiKeyId, { lastUsedAt }));
    const lastUsedAt = async () => (await t.run((ctx) => ctx.db.get("apiKeys", apiKeyId)))?.lastUsedAt;

    const recent = Date.now() - LAST_USED_RESOLUTION_MS / 2;
    await setLastUsedAt(recent);
    expect((await fetchMetrics(`Bearer ${apiKey}`)).status).toBe(200);
    expect(await lastUsedAt()).toBe(recent);

    const stale = Date.now() - 2 * LAST_USED_RESOLUTION_MS;
    await setLastUsedAt(stale);
    expect((await fetchMetrics(`Bearer ${apiKey}`)).status).toBe(200);
    expect(await lastUsedAt()).toBeGreaterThan(recent);
  });

  test("the key never appears in the audit log or any stored document", async () => {
    const { apiKeyId, apiKey } = await createKey();
    await fetchMetrics(`Bearer ${apiKey}`);
    await project.admin.mutation(api.apiKeys.revoke, { apiKeyId });
    expect(await everythingStored(t)).not.toContain(apiKey);
  });
});
