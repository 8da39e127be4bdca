/**
 * Functions whose arguments carry a secret are never validated by Convex:
 * its validation errors quote the whole argument object ("Object contains
 * extra field … Object: {…}"), secret included, into the deployment's logs.
 * Each declares `args: any` to Convex (checked here on the registered
 * function, which is what a deployment receives), keeps a precise argument
 * type for the dashboard (checked at compile time), and answers an extra, a
 * missing or a wrongly typed argument with the project's own error, which
 * names at most the argument, never a value.
 */
import type { FunctionArgs } from "convex/server";
import { ConvexError } from "convex/values";
import { describe, expect, expectTypeOf, test } from "vitest";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import * as ai from "../../convex/ai";
import * as aiKeys from "../../convex/aiKeys";
import * as connections from "../../convex/connections";
import { projectWithEveryRole, type Caller } from "../helpers/api";
import { newBackend } from "../helpers/convex";
import { SECRET_ARGUMENT_FUNCTIONS } from "../helpers/secretFunctions";
import { expectNoSecrets, spyOnConsole } from "../helpers/secrets";

const STRIPE_KEY = "sk_live_SecretArgsTest000000000000004242";
const OTHER_STRIPE_KEY = "sk_live_SecretArgsOther00000000000004343";
const OPENAI_KEY = "sk-proj-SecretArgsTestKey0000000000000000001";
const FLOW_TOKEN = "FlowTokenSecretArgsTest0000000000000000001";
const SECRETS = [STRIPE_KEY, OTHER_STRIPE_KEY, OPENAI_KEY, FLOW_TOKEN];

/** The project's error for `call`, checked to carry no secret in its message or data, and nothing logged. */
async function refusal(call: () => Promise<unknown>): Promise<{ code: string; message: string; field?: string }> {
  const console = spyOnConsole(() => SECRETS);
  let caught: unknown = null;
  try {
    await call();
  } catch (error) {
    caught = error;
  }
  expect(caught, "the call should have been refused").toBeInstanceOf(ConvexError);
  const error = caught as ConvexError<{ code: string; message: string; field?: string }>;
  expectNoSecrets(error, SECRETS);
  expectNoSecrets(error.data, SECRETS);
  console.expectClean();
  return error.data;
}

describe("Convex validates none of their arguments", () => {
  test("exactly these public functions declare args: any", () => {
    const modules = import.meta.glob<Record<string, unknown>>("../../convex/**/*.ts", { eager: true });
    const unvalidated: string[] = [];
    for (const [path, exports] of Object.entries(modules)) {
      for (const [name, value] of Object.entries(exports)) {
        const registered = value as { isPublic?: boolean; exportArgs?: () => string };
        if (typeof value !== "function" || registered.isPublic !== true || !registered.exportArgs) continue;
        if ((JSON.parse(registered.exportArgs()) as { type: string }).type === "any") {
          unvalidated.push(`${path.replace("../../convex/", "").replace(/\.ts$/, "")}:${name}`);
        }
      }
    }
    expect(unvalidated.sort()).toEqual([...SECRET_ARGUMENT_FUNCTIONS].sort());
  });

  test.each([
    ["connections.create", connections.create],
    ["connections.updateCredentials", connections.updateCredentials],
    ["connections.finishOAuth", connections.finishOAuth],
    ["aiKeys.set", aiKeys.set],
    ["ai.verifyKey", ai.verifyKey],
  ])("%s declares args: any to the deployment", (_name, registered) => {
    const exported = registered as unknown as { exportArgs(): string };
    expect(JSON.parse(exported.exportArgs())).toEqual({ type: "any" });
  });

  test("the dashboard's typed api keeps the precise argument types", () => {
    expectTypeOf<FunctionArgs<typeof api.connections.create>>().toEqualTypeOf<{
      projectId: Id<"projects">;
      service: string;
      name?: string;
      credentials: Record<string, string>;
    }>();
    expectTypeOf<FunctionArgs<typeof api.connections.updateCredentials>>().toEqualTypeOf<{
      connectionId: Id<"connections">;
      credentials: Record<string, string>;
    }>();
    expectTypeOf<FunctionArgs<typeof api.connections.finishOAuth>>().toEqualTypeOf<{ flow: string }>();
    expectTypeOf<FunctionArgs<typeof api.aiKeys.set>>().toEqualTypeOf<{ provider: "openai" | "anthropic"; apiKey: string }>();
    expectTypeOf<FunctionArgs<typeof api.ai.verifyKey>>().toEqualTypeOf<{ provider: "openai" | "anthropic"; apiKey: string }>();
  });
});

// Malformed calls, typed loosely on purpose: the dashboard's types would not let them through.
type Loose = Record<string, unknown>;

describe("malformed calls get the project's error and no secret", () => {
  async function setup() {
    const t = newBackend();
    const project = await projectWithEveryRole(t);
    const connectionId = await project.owner.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "stripe",
      credentials: { secretKey: STRIPE_KEY },
    });
    return { t, project, connectionId };
  }

  function create(caller: Caller, args: Loose) {
    return () => caller.mutation(api.connections.create, args as never);
  }

  test("connections.create: extra, missing and wrongly typed arguments and credential fields", async () => {
    const { project } = await setup();
    const base = { projectId: project.projectId, service: "stripe", credentials: { secretKey: OTHER_STRIPE_KEY } };
    const cases: [Loose, string, string?][] = [
      [{ ...base, extra: OPENAI_KEY }, "INVALID_ARGUMENT"],
      [{ ...base, credentials: { secretKey: OTHER_STRIPE_KEY, note: "x" } }, "INVALID_CREDENTIALS"],
      [{ projectId: project.projectId, service: "stripe" }, "INVALID_ARGUMENT", "credentials"],
      [{ ...base, credentials: {} }, "INVALID_CREDENTIALS"],
      [{ ...base, credentials: OTHER_STRIPE_KEY }, "INVALID_ARGUMENT", "credentials"],
      [{ ...base, credentials: { secretKey: [OTHER_STRIPE_KEY] } }, "INVALID_ARGUMENT", "credentials"],
      [{ ...base, service: 7 }, "INVALID_ARGUMENT", "service"],
      [{ ...base, name: { text: OTHER_STRIPE_KEY } }, "INVALID_ARGUMENT", "name"],
      [{ ...base, projectId: OTHER_STRIPE_KEY }, "INVALID_ARGUMENT", "projectId"],
      [{ ...base, projectId: 42 }, "INVALID_ARGUMENT", "projectId"],
    ];
    for (const [args, code, field] of cases) {
      const data = await refusal(create(project.owner, args));
      expect([data.code, data.field]).toEqual([code, field]);
    }
    // The role is still checked first: a member gets FORBIDDEN, whatever the arguments.
    expect((await refusal(create(project.member, { ...base, extra: 1 }))).code).toBe("FORBIDDEN");
  });

  test("connections.updateCredentials: extra, missing and wrongly typed arguments", async () => {
    const { project, connectionId } = await setup();
    const base = { connectionId, credentials: { secretKey: OTHER_STRIPE_KEY } };
    const cases: [Loose, string, string?][] = [
      [{ ...base, extra: OPENAI_KEY }, "INVALID_ARGUMENT"],
      [{ ...base, credentials: { secretKey: OTHER_STRIPE_KEY, extra: OPENAI_KEY } }, "INVALID_CREDENTIALS"],
      [{ connectionId }, "INVALID_ARGUMENT", "credentials"],
      [{ ...base, credentials: { secretKey: 1 } }, "INVALID_ARGUMENT", "credentials"],
      [{ ...base, credentials: [OTHER_STRIPE_KEY] }, "INVALID_ARGUMENT", "credentials"],
      [{ ...base, connectionId: project.projectId }, "INVALID_ARGUMENT", "connectionId"],
      [{ credentials: { secretKey: OTHER_STRIPE_KEY } }, "INVALID_ARGUMENT", "connectionId"],
    ];
    for (const [args, code, field] of cases) {
      const data = await refusal(() => project.owner.mutation(api.connections.updateCredentials, args as never));
      expect([data.code, data.field]).toEqual([code, field]);
    }
  });

  test.each([
    ["aiKeys.set", (caller: Caller, args: Loose) => caller.mutation(api.aiKeys.set, args as never)],
    ["ai.verifyKey", (caller: Caller, args: Loose) => caller.action(api.ai.verifyKey, args as never)],
  ])("%s: extra, missing and wrongly typed arguments", async (_name, call) => {
    const { project } = await setup();
    const cases: [Loose, string, string?][] = [
      [{ provider: "openai", apiKey: OPENAI_KEY, extra: true }, "INVALID_ARGUMENT"],
      [{ provider: "openai", apiKey: OPENAI_KEY, [OPENAI_KEY]: 1 }, "INVALID_ARGUMENT"],
      [{ apiKey: OPENAI_KEY }, "INVALID_ARGUMENT", "provider"],
      [{ provider: "openai" }, "INVALID_ARGUMENT", "apiKey"],
      [{ provider: "gpt", apiKey: OPENAI_KEY }, "INVALID_ARGUMENT", "provider"],
      [{ provider: "openai", apiKey: { key: OPENAI_KEY } }, "INVALID_ARGUMENT", "apiKey"],
      [{ provider: "openai", apiKey: [OPENAI_KEY] }, "INVALID_ARGUMENT", "apiKey"],
    ];
    for (const [args, code, field] of cases) {
      const data = await refusal(() => call(project.owner, args));
      expect([data.code, data.field]).toEqual([code, field]);
    }
  });

  test("connections.finishOAuth: extra, missing and wrongly typed arguments", async () => {
    const { project } = await setup();
    const cases: [Loose, string, string?][] = [
      [{ flow: FLOW_TOKEN, extra: 1 }, "INVALID_ARGUMENT"],
      [{}, "INVALID_ARGUMENT", "flow"],
      [{ flow: [FLOW_TOKEN] }, "INVALID_ARGUMENT", "flow"],
    ];
    for (const [args, code, field] of cases) {
      const data = await refusal(() => project.owner.action(api.connections.finishOAuth, args as never));
      expect([data.code, data.field]).toEqual([code, field]);
    }
  });

  test("well-formed calls still work and store nothing from refused ones", async () => {
    const { t, project, connectionId } = await setup();
    await project.owner.mutation(api.connections.updateCredentials, { connectionId, credentials: { secretKey: OTHER_STRIPE_KEY } });
    await project.owner.mutation(api.aiKeys.set, { provider: "openai", apiKey: OPENAI_KEY });
    const hints = await t.run(async (ctx) => (await ctx.db.get("connections", connectionId))?.credentialHints);
    expect(Object.keys(hints ?? {})).toEqual(["secretKey"]);
  });
});
