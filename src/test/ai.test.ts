import { ConvexError } from "convex/values";
import { describe, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { ANTHROPIC_DEFAULT_MODEL, OPENAI_DEFAULT_MODEL } from "../convex/providers/ai/registry";
import { identity, newBackend, type Backend } from "./helpers/convex";
import { SECOND_MASTER_KEY } from "./helpers/keys";
import { seedAiKey, seedConnection, seedProject } from "./helpers/seed";
import { SECRETS, expectNoSecrets, useFakeProviders } from "./helpers/secrets";

const fake = useFakeProviders();

/** A project where alice (member) and bob (owner) work, with two synced GitHub snapshots. */
async function setup(t: Backend) {
  const { projectId, userIds } = await seedProject(t, { alice: "member", bob: "owner" });
  const connectionId = await seedConnection(t, projectId, "github", {
    token: SECRETS.githubToken,
    repository: SECRETS.githubRepository,
  });
  await t.run(async (ctx) => {
    const point = { connectionId, projectId, name: "stars" };
    await ctx.db.insert("metrics", { ...point, value: 4000, timestamp: Date.UTC(2025, 0, 1) });
    await ctx.db.insert("metrics", { ...point, value: 4242, timestamp: Date.UTC(2025, 0, 2) });
  });
  return { projectId, userIds, alice: t.withIdentity(identity("alice")) };
}

async function errorOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConvexError);
  expectNoSecrets(error);
  return (error as ConvexError<{ code: string; message: string }>).data;
}

function auditActions(t: Backend, aiKeyId: Id<"aiKeys">) {
  return t.run(async (ctx) =>
    (
      await ctx.db
        .query("auditLog")
        .withIndex("by_targetId_and_at", (q) => q.eq("targetId", aiKeyId))
        .collect()
    ).map((entry) => entry.action),
  );
}

describe("ai.generateInsight", () => {
  test("OpenAI: the caller's decrypted key as Bearer, metrics in the prompt, insight stored and returned", async () => {
    const t = newBackend();
    const { projectId, userIds, alice } = await setup(t);
    const aiKeyId = await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);

    const insight = await alice.action(api.ai.generateInsight, { projectId });

    expect(insight).toMatchObject({ provider: "openai", model: OPENAI_DEFAULT_MODEL, text: fake().values.insightText });
    expectNoSecrets(insight);
    const request = fake().requests[0]!;
    expect(request).toMatchObject({ method: "POST", path: "/v1/chat/completions" });
    expect(request.headers.authorization).toBe(`Bearer ${SECRETS.openaiKey}`);
    const body = JSON.parse(request.body) as { model: string; messages: { role: string; content: string }[] };
    expect(body.model).toBe(OPENAI_DEFAULT_MODEL);
    const prompt = body.messages.find((message) => message.role === "user")?.content ?? "";
    expect(prompt).toContain(`metric "stars": 4242`);
    expect(prompt).toContain("was 4000");
    expectNoSecrets(body);

    const stored = await t.run((ctx) => ctx.db.get("insights", insight.insightId));
    expect(stored).toMatchObject({ projectId, userId: userIds.alice, text: fake().values.insightText, provider: "openai" });
    expect(await auditActions(t, aiKeyId)).toEqual(["aiKey.decrypted"]);
  });

  test("Anthropic: x-api-key and anthropic-version headers, model overridable by ANTHROPIC_MODEL", async () => {
    const t = newBackend();
    const { projectId, userIds, alice } = await setup(t);
    await seedAiKey(t, userIds.alice!, "anthropic", SECRETS.anthropicKey);
    vi.stubEnv("ANTHROPIC_MODEL", "claude-sonnet-4-5");

    const insight = await alice.action(api.ai.generateInsight, { projectId });

    expect(insight).toMatchObject({ provider: "anthropic", model: "claude-sonnet-4-5", text: fake().values.insightText });
    const request = fake().requests[0]!;
    expect(request).toMatchObject({ method: "POST", path: "/v1/messages" });
    expect(request.headers["x-api-key"]).toBe(SECRETS.anthropicKey);
    expect(request.headers["anthropic-version"]).toBe("2023-06-01");
    expect(request.headers.authorization).toBeUndefined();
    expect((JSON.parse(request.body) as { model: string }).model).toBe("claude-sonnet-4-5");
    expect(ANTHROPIC_DEFAULT_MODEL).not.toBe("claude-sonnet-4-5");
  });

  test("uses only the caller's key: without one, NOT_FOUND even if another member has a key", async () => {
    const t = newBackend();
    const { projectId, userIds, alice } = await setup(t);
    await seedAiKey(t, userIds.bob!, "openai", SECRETS.openaiKey);

    expect(await errorOf(alice.action(api.ai.generateInsight, { projectId }))).toEqual({
      code: "NOT_FOUND",
      message: "Set an AI key first",
    });
    expect(fake().requests).toEqual([]);
  });

  test("non-members and unauthenticated callers are refused before any decryption", async () => {
    const t = newBackend();
    const { projectId, userIds } = await setup(t);
    const aiKeyId = await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);
    await seedProject(t, { mallory: "owner" });

    expect((await errorOf(t.action(api.ai.generateInsight, { projectId }))).code).toBe("UNAUTHENTICATED");
    const mallory = t.withIdentity(identity("mallory"));
    expect((await errorOf(mallory.action(api.ai.generateInsight, { projectId }))).code).toBe("FORBIDDEN");
    expect(fake().requests).toEqual([]);
    expect(await auditActions(t, aiKeyId)).toEqual([]);
  });

  test("a key that does not decrypt: DECRYPTION_FAILED, audited, provider never called", async () => {
    const t = newBackend();
    const { projectId, userIds, alice } = await setup(t);
    const aiKeyId = await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);

    expect((await errorOf(alice.action(api.ai.generateInsight, { projectId }))).code).toBe("DECRYPTION_FAILED");
    expect(fake().requests).toEqual([]);
    expect(await auditActions(t, aiKeyId)).toEqual(["aiKey.decryption_failed"]);
  });

  test.each([
    { mode: 401 as const, message: "OpenAI rejected the credentials (HTTP 401)", reason: "unauthorized", status: 401 },
    { mode: 429 as const, message: "OpenAI is rate limiting requests; try again later (HTTP 429)", reason: "rate_limited", status: 429 },
    { mode: 500 as const, message: "OpenAI is unavailable (HTTP 500)", reason: "unavailable", status: 500 },
    { mode: "slow" as const, message: "OpenAI did not answer in time", reason: "timeout" },
    { mode: "wrong_shape" as const, message: "OpenAI sent an unexpected response", reason: "bad_response" },
  ])("provider failure $mode: PROVIDER_ERROR with a safe message, nothing stored", async ({ mode, message, reason, status }) => {
    const t = newBackend();
    const { projectId, userIds, alice } = await setup(t);
    const aiKeyId = await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);
    fake().setMode("openai.chat", mode);

    expect(await errorOf(alice.action(api.ai.generateInsight, { projectId }))).toEqual({
      code: "PROVIDER_ERROR",
      message,
      service: "OpenAI",
      reason,
      ...(status === undefined ? {} : { status }),
    });
    expect(await t.run((ctx) => ctx.db.query("insights").collect())).toEqual([]);
    expect(await auditActions(t, aiKeyId)).toEqual(["aiKey.decrypted"]);
  });
});

describe("AI key audit entries belong to the key's owner", () => {
  const firstPage = { numItems: 100, cursor: null };

  test("other members of the project do not see them in auditLog.list; the owner sees them in auditLog.listMine", async () => {
    const t = newBackend();
    const { projectId, userIds, alice } = await setup(t);
    const bob = t.withIdentity(identity("bob"));
    await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey });
    await alice.action(api.ai.generateInsight, { projectId });

    for (const member of [bob, alice]) {
      const projectLog = await member.query(api.auditLog.list, { projectId, paginationOpts: firstPage });
      expect(projectLog.page.filter((entry) => entry.targetTable === "aiKeys")).toEqual([]);
    }
    const mine = await alice.query(api.auditLog.listMine, { paginationOpts: firstPage });
    expect(mine.page.map((entry) => [entry.action, entry.actorId])).toEqual([
      ["aiKey.decrypted", userIds.alice],
      ["aiKey.set", userIds.alice],
    ]);
    expect(mine.page[0]?.detail).toContain(projectId);
    expectNoSecrets(mine);
    expect((await bob.query(api.auditLog.listMine, { paginationOpts: firstPage })).page).toEqual([]);
    const stored = await t.run((ctx) => ctx.db.query("auditLog").collect());
    for (const entry of stored.filter((row) => row.targetTable === "aiKeys")) {
      expect(entry.projectId).toBeUndefined();
      expect(entry.ownerId).toBe(userIds.alice);
    }
  });

  test("entries older versions wrote with the project's id are not listed to the project either", async () => {
    const t = newBackend();
    const { projectId, userIds } = await setup(t);
    const aiKeyId = await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);
    await t.run((ctx) =>
      ctx.db.insert("auditLog", {
        action: "aiKey.decrypted",
        actorId: userIds.alice,
        projectId,
        targetTable: "aiKeys",
        targetId: aiKeyId,
        detail: "insight",
        at: Date.now(),
      }),
    );
    const bob = t.withIdentity(identity("bob"));
    expect((await bob.query(api.auditLog.list, { projectId, paginationOpts: firstPage })).page).toEqual([]);
  });
});

describe("ai.verifyKey", () => {
  test("a working key is valid; a refused key is invalid with a safe reason", async () => {
    const t = newBackend();
    const alice = t.withIdentity(identity("alice"));

    expect(await alice.action(api.ai.verifyKey, { provider: "openai", apiKey: SECRETS.openaiKey })).toEqual({ valid: true });
    expect(await alice.action(api.ai.verifyKey, { provider: "anthropic", apiKey: SECRETS.anthropicKey })).toEqual({
      valid: true,
    });
    const wrong = "sk-ant-api03-WrongKeyEchoedByTheProvider0000000000";
    const refused = await alice.action(api.ai.verifyKey, { provider: "anthropic", apiKey: wrong });
    expect(refused).toEqual({ valid: false, error: "Anthropic rejected the credentials (HTTP 401)" });

    expect(fake().requests.map((request) => request.route)).toEqual(["openai.models", "anthropic.models", "anthropic.models"]);
    expect(fake().requests[0]?.headers.authorization).toBe(`Bearer ${SECRETS.openaiKey}`);
    expect(fake().requests[1]?.headers["x-api-key"]).toBe(SECRETS.anthropicKey);
    expect((await errorOf(t.action(api.ai.verifyKey, { provider: "openai", apiKey: SECRETS.openaiKey }))).code).toBe(
      "UNAUTHENTICATED",
    );
  });
});
