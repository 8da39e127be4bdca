import { beforeEach, describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { sha256Hex } from "../convex/lib/hash";
import { errorOf, everythingStored, projectWithEveryRole, type ProjectFixture } from "./helpers/api";
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
});

describe("GET /api/v1/projects/metrics", () => {
  let connectionId: Id<"connections">;

  beforeEach(async () => {
    connectionId = await project.owner.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "stripe",
      credentials: { secretKey: "sk_live_HttpTestKey000000000000" },
    });
    await t.run(async (ctx) => {
      const rows = [
        { name: "mrr", value: 100, timestamp: 1_000 },
        { name: "mrr", value: 250, timestamp: 3_000 },
        { name: "mrr", value: 175, timestamp: 2_000 },
        { name: "balance", value: 42, timestamp: 1_500 },
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
        { connectionId, name: "balance", value: 42, timestamp: 1_500 },
      ]),
    );
    expect(body.metrics).toHaveLength(2);
    const [listed] = await project.member.query(api.apiKeys.list, { projectId: project.projectId });
    expect(listed?.apiKeyId).toBe(apiKeyId);
    expect(listed?.lastUsedAt).toEqual(expect.any(Number));
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

  test("the key never appears in the audit log or any stored document", async () => {
    const { apiKeyId, apiKey } = await createKey();
    await fetchMetrics(`Bearer ${apiKey}`);
    await project.admin.mutation(api.apiKeys.revoke, { apiKeyId });
    expect(await everythingStored(t)).not.toContain(apiKey);
  });
});
