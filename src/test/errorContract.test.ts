// The dashboard's error contract (errors.ts, docs/api.md): every code a
// public function can be made to fail with carries exactly the data its
// member of AppErrorData declares, and nothing secret.
import { ConvexError } from "convex/values";
import { describe, expect, expectTypeOf, test, vi } from "vitest";
import apiDocs from "../../docs/api.md?raw";
import { api } from "../convex/_generated/api";
import { appError, appErrorData, errorCodes, type AppErrorData, type AppErrorDataOf, type ErrorCode } from "../convex/errors";
import { projectWithEveryRole } from "./helpers/api";
import { identity, newBackend } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "./helpers/keys";
import { seedAiKey, seedConnection, seedProject } from "./helpers/seed";
import { SECRETS, expectNoSecrets, useFakeProviders } from "./helpers/secrets";

const fake = useFakeProviders();

/** The data of the AppError `call` fails with; fails the test if it succeeds, fails otherwise, or leaks a secret. */
async function dataOf(call: Promise<unknown>): Promise<AppErrorData> {
  const error = await call.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConvexError);
  expectNoSecrets(error);
  const data = appErrorData(error);
  expect(data, "an AppError with a known code").not.toBeNull();
  return data!;
}

const anyMessage = expect.any(String) as unknown as string;

describe("error data per code", () => {
  test("UNAUTHENTICATED: code and message only", async () => {
    const t = newBackend();
    expect(await dataOf(t.mutation(api.projects.create, { name: "Acme" }))).toEqual({ code: "UNAUTHENTICATED", message: anyMessage });
  });

  test("FORBIDDEN, CONFLICT: code and message only", async () => {
    const t = newBackend();
    const { projectId, owner, outsider } = await projectWithEveryRole(t);
    expect(await dataOf(outsider.query(api.connections.list, { projectId }))).toEqual({ code: "FORBIDDEN", message: anyMessage });
    const ownerId = (await owner.mutation(api.users.store, {})).userId;
    expect(await dataOf(owner.mutation(api.projects.removeMember, { projectId, userId: ownerId }))).toEqual({
      code: "CONFLICT",
      message: anyMessage,
    });
  });

  test("NOT_FOUND: code and message only", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { alice: "owner" });
    const alice = t.withIdentity(identity("alice"));
    expect(await dataOf(alice.action(api.ai.generateInsight, { projectId }))).toEqual({ code: "NOT_FOUND", message: anyMessage });
  });

  test("INVALID_ARGUMENT: `field` names the argument, never echoes its value", async () => {
    const t = newBackend();
    const alice = t.withIdentity(identity("alice"));
    const pasted = "not-a-key-but-a-password-0123456789";
    const data = await dataOf(alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: pasted }));
    expect(data).toEqual({ code: "INVALID_ARGUMENT", message: anyMessage, field: "apiKey" });
    expect(JSON.stringify(data)).not.toContain(pasted);
    expect(await dataOf(alice.mutation(api.projects.create, { name: "" }))).toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  test("INVALID_CREDENTIALS: code and message", async () => {
    const t = newBackend();
    const { projectId, admin } = await projectWithEveryRole(t);
    const data = await dataOf(admin.mutation(api.connections.create, { projectId, service: "stripe", credentials: {} }));
    expect(data).toMatchObject({ code: "INVALID_CREDENTIALS", message: anyMessage });
  });

  test("ENCRYPTION_UNAVAILABLE: `reason` is the core's code, `variable` the deployment variable to fix", async () => {
    const t = newBackend();
    const { projectId, admin } = await projectWithEveryRole(t);
    const create = () =>
      admin.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } });

    vi.stubEnv("MASTER_ENCRYPTION_KEY", "");
    expect(await dataOf(create())).toEqual({
      code: "ENCRYPTION_UNAVAILABLE",
      message: anyMessage,
      reason: "MASTER_KEY_MISSING",
      variable: "MASTER_ENCRYPTION_KEY",
    });

    vi.stubEnv("MASTER_ENCRYPTION_KEY", "short");
    expect(await dataOf(create())).toMatchObject({ reason: "MASTER_KEY_TOO_SHORT", variable: "MASTER_ENCRYPTION_KEY" });

    // A damaged root salt is no variable's fault.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", TEST_MASTER_KEY);
    await create();
    await t.run(async (ctx) => {
      for (const row of await ctx.db.query("encryptionSettings").collect()) await ctx.db.patch(row._id, { rootSalt: "damaged" });
    });
    expect(await dataOf(create())).toEqual({ code: "ENCRYPTION_UNAVAILABLE", message: anyMessage, reason: "ROOT_SALT_INVALID" });
  });

  test("ENCRYPTION_UNAVAILABLE: a value only an unusable OLD_MASTER_KEY entry could open names OLD_MASTER_KEY", async () => {
    const t = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner" });
    await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);
    const connectionId = await seedConnection(t, projectId, "github", { token: SECRETS.githubToken, repository: SECRETS.githubRepository });
    await t.run((ctx) => ctx.db.insert("metrics", { connectionId, projectId, name: "stars", value: 1, timestamp: 1 }));
    vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
    vi.stubEnv("OLD_MASTER_KEY", "short");

    const alice = t.withIdentity(identity("alice"));
    expect(await dataOf(alice.action(api.ai.generateInsight, { projectId }))).toEqual({
      code: "ENCRYPTION_UNAVAILABLE",
      message: anyMessage,
      reason: "MASTER_KEY_TOO_SHORT",
      variable: "OLD_MASTER_KEY",
    });
  });

  test("DECRYPTION_FAILED: `reason` is the core's code (here the key that encrypted it is gone)", async () => {
    const t = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner" });
    await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);
    const connectionId = await seedConnection(t, projectId, "github", { token: SECRETS.githubToken, repository: SECRETS.githubRepository });
    await t.run((ctx) => ctx.db.insert("metrics", { connectionId, projectId, name: "stars", value: 1, timestamp: 1 }));
    vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);

    const alice = t.withIdentity(identity("alice"));
    expect(await dataOf(alice.action(api.ai.generateInsight, { projectId }))).toEqual({
      code: "DECRYPTION_FAILED",
      message: anyMessage,
      reason: "UNKNOWN_KEY_ID",
    });
  });

  test("PROVIDER_ERROR: `service`, `reason` (the kind of failure) and the HTTP `status`", async () => {
    const t = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner" });
    await seedAiKey(t, userIds.alice!, "openai", SECRETS.openaiKey);
    const connectionId = await seedConnection(t, projectId, "github", { token: SECRETS.githubToken, repository: SECRETS.githubRepository });
    await t.run((ctx) => ctx.db.insert("metrics", { connectionId, projectId, name: "stars", value: 1, timestamp: 1 }));
    fake().setMode("openai.chat", 401);

    const alice = t.withIdentity(identity("alice"));
    expect(await dataOf(alice.action(api.ai.generateInsight, { projectId }))).toEqual({
      code: "PROVIDER_ERROR",
      message: anyMessage,
      service: "OpenAI",
      reason: "unauthorized",
      status: 401,
    });
  });

  test("RATE_LIMITED: `retryAt` is when the limiter lets the next call through", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const start = new Date("2026-01-01T00:00:00Z").getTime();
      vi.setSystemTime(start);
      const t = newBackend();
      const alice = t.withIdentity(identity("alice"));
      const verify = () => alice.action(api.ai.verifyKey, { provider: "openai", apiKey: SECRETS.openaiKey });
      for (let i = 0; i < 5; i++) await verify();

      const data = await dataOf(verify());
      expect(data).toEqual({ code: "RATE_LIMITED", message: anyMessage, retryAt: expect.any(Number) });
      const retryAt = data.code === "RATE_LIMITED" ? data.retryAt : NaN;
      // aiKeyCheck refills 10 tokens an hour: the next one comes 6 minutes after the burst.
      expect(retryAt).toBe(start + 6 * 60_000);

      vi.setSystemTime(retryAt - 1);
      expect((await dataOf(verify())).code).toBe("RATE_LIMITED");
      vi.setSystemTime(retryAt);
      await verify();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("the union", () => {
  test("every code is documented in docs/api.md with what the UI should do", () => {
    for (const code of errorCodes) expect(apiDocs, code).toMatch(new RegExp(`\\| \`${code}\` \\|`));
  });

  test("appErrorData: only ConvexErrors with a known code", () => {
    expect(appErrorData(new Error("x"))).toBeNull();
    expect(appErrorData(new ConvexError("plain string"))).toBeNull();
    expect(appErrorData(new ConvexError({ code: "SOMETHING_ELSE", message: "x" }))).toBeNull();
    expect(appErrorData(appError("RATE_LIMITED", "later", { retryAt: 5 }))).toEqual({ code: "RATE_LIMITED", message: "later", retryAt: 5 });
    // Absent optional fields are left out (Convex values cannot hold undefined).
    expect(appError("DECRYPTION_FAILED", "x", { reason: undefined }).data).toEqual({ code: "DECRYPTION_FAILED", message: "x" });
  });

  test("types: a discriminated union, exhaustive, with the fields each code requires", () => {
    /** What a client does per code; fails to compile when a code is added and not handled. */
    function uiAction(data: AppErrorData): string {
      switch (data.code) {
        case "UNAUTHENTICATED":
          return "sign in";
        case "FORBIDDEN":
        case "NOT_FOUND":
        case "CONFLICT":
          return data.message;
        case "INVALID_ARGUMENT":
          return `fix ${data.field ?? "the form"}`;
        case "INVALID_CREDENTIALS":
          return "re-enter credentials";
        case "ENCRYPTION_UNAVAILABLE":
          return "variable" in data ? `ask an admin to set ${data.variable}` : "ask an admin to restore the root salt";
        case "DECRYPTION_FAILED":
          return `re-enter the secret (${data.reason ?? "unreadable"})`;
        case "PROVIDER_ERROR":
          return `${data.service}: ${data.reason}`;
        case "RATE_LIMITED":
          return `retry at ${new Date(data.retryAt).toISOString()}`;
        case "LIMIT_REACHED":
          return `at most ${data.limit} (${data.reason})`;
        case "INTERNAL":
          return "something went wrong; try again later";
        default: {
          const unhandled: never = data;
          return unhandled;
        }
      }
    }
    expect(uiAction({ code: "RATE_LIMITED", message: "", retryAt: 0 })).toBe("retry at 1970-01-01T00:00:00.000Z");

    expectTypeOf<AppErrorData["code"]>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<AppErrorDataOf<"RATE_LIMITED">>().toEqualTypeOf<{ code: "RATE_LIMITED"; message: string; retryAt: number }>();
    expectTypeOf<AppErrorDataOf<"UNAUTHENTICATED">>().toEqualTypeOf<{ code: "UNAUTHENTICATED"; message: string }>();
    expectTypeOf<Extract<AppErrorDataOf<"ENCRYPTION_UNAVAILABLE">, { variable: unknown }>["variable"]>().toEqualTypeOf<
      "MASTER_ENCRYPTION_KEY" | "OLD_MASTER_KEY"
    >();

    // Required fields are required where errors are made.
    // @ts-expect-error RATE_LIMITED needs retryAt
    expect(() => appError("RATE_LIMITED", "later")).not.toThrow();
    // @ts-expect-error ENCRYPTION_UNAVAILABLE needs reason and variable
    expect(() => appError("ENCRYPTION_UNAVAILABLE", "not configured")).not.toThrow();
    // @ts-expect-error a field of another code
    expect(() => appError("NOT_FOUND", "gone", { retryAt: 1 })).not.toThrow();
  });
});
