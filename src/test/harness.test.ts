/**
 * The suite's production-faithful checks themselves: the schema check of
 * every write (v.record included, which convex-test skips), the validator
 * checker on every validator kind, transaction limits on by default, and the
 * PBKDF2 budget of queries and mutations.
 */
import { v, type Validator, type ValidatorJSON } from "convex/values";
import { describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { budgetViolations, PBKDF2_BUDGET, takeExecutions, trackExecution } from "./helpers/executions";
import { checkValue, fieldNameProblem } from "./helpers/schemaCheck";
import { identity, newBackend } from "./helpers/convex";
import { ColdHarness } from "./helpers/cold";
import { seedProject } from "./helpers/seed";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function problemsOf(validator: Validator<any, any, any>, value: unknown): string[] {
  const problems: string[] = [];
  // `json` is the validator's wire form (marked internal in convex's types): what the schema exports.
  checkValue((validator as unknown as { json: ValidatorJSON }).json, value, "", problems);
  return problems;
}

describe("validator checker (Convex's check_value rules, from the validators' JSON)", () => {
  test.each([
    ["null", v.null(), null, 0],
    ["number", v.number(), 1.5, "1"],
    ["int64", v.int64(), 3n, 3],
    ["boolean", v.boolean(), false, 0],
    ["string", v.string(), "x", 1],
    ["bytes", v.bytes(), new ArrayBuffer(2), new Uint8Array(2)],
    ["literal", v.literal("a"), "a", "b"],
    ["int64 literal", v.literal(5n), 5n, 5],
    ["id", v.id("projects"), "10001projects", "10001users"],
    ["array", v.array(v.number()), [1, 2], [1, "2"]],
    ["optional inside object", v.object({ a: v.optional(v.string()) }), {}, { a: 1 }],
    ["union", v.union(v.literal("x"), v.number()), 4, "y"],
    ["record of strings", v.record(v.string(), v.string()), { key: "value" }, { key: 1 }],
    ["record with id keys", v.record(v.id("users"), v.boolean()), { "10001users": true }, { "10001projects": true }],
    ["nested record", v.object({ settings: v.record(v.string(), v.array(v.int64())) }), { settings: { a: [1n] } }, { settings: { a: [1] } }],
  ])("%s: accepts the valid value, refuses the invalid one", (_name, validator, valid, invalid) => {
    expect(problemsOf(validator, valid)).toEqual([]);
    expect(problemsOf(validator, invalid).length).toBeGreaterThan(0);
  });

  test("objects: a missing required field and an extra field are both problems, undefined counts as absent", () => {
    const validator = v.object({ a: v.string(), b: v.optional(v.number()) });
    expect(problemsOf(validator, { a: "x", b: undefined })).toEqual([]);
    expect(problemsOf(validator, { b: 1 })).toEqual([".a: required field is missing"]);
    expect(problemsOf(validator, { a: "x", c: 1 })).toEqual([".c: field is not in the validator"]);
  });

  test("record keys must be names Convex stores; messages name the path and type, never the value", () => {
    const validator = v.record(v.string(), v.string());
    const secret = "sk_live_never_in_a_message";
    const problems = problemsOf(validator, { $reserved: "a", "naïve": "b", ok: 7, [secret]: 1 });
    expect(problems.join("\n")).toMatch(/\["\$reserved"\]: record key starts with '\$'/);
    expect(problems.join("\n")).toMatch(/not printable ASCII/);
    expect(problems.join("\n")).toMatch(/\.ok\.values\(\): expected string, got float64/);
    expect(problems.join("\n")).not.toContain("sk_live_never_in_a_message\"]: record value");
    expect(fieldNameProblem("x".repeat(1025))).toMatch(/longer than 1024/);
    expect(fieldNameProblem("plain name with spaces")).toBeNull();
  });

  test("v.any() still requires Convex field names in nested objects", () => {
    expect(problemsOf(v.any(), { nested: { $bad: 1 } })).toEqual(['.nested["$bad"]: field name starts with \'$\' (reserved)']);
  });
});

describe("every write is checked against the schema", () => {
  test("a record value of the wrong type is refused at the write, as Convex refuses it", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { alice: "owner" });
    const write = t.run((ctx) =>
      ctx.db.insert("connections", {
        projectId,
        service: "github",
        name: "GitHub",
        credentialHints: { token: 42 as unknown as string },
        status: "active",
        healthScore: 100,
        createdAt: 0,
        updatedAt: 0,
      }),
    );
    await expect(write).rejects.toThrow(/Schema check: Convex would refuse this write to table "connections"[\s\S]*\.credentialHints\.token\.values\(\): expected string, got float64/);
  });

  test("patches are checked with the merged document", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { alice: "owner" });
    const connectionId = await t.run((ctx) =>
      ctx.db.insert("connections", {
        projectId,
        service: "github",
        name: "GitHub",
        credentialHints: { token: "…0001" },
        status: "active",
        healthScore: 100,
        createdAt: 0,
        updatedAt: 0,
      }),
    );
    const patch = t.run((ctx) => ctx.db.patch("connections", connectionId, { credentialHints: { token: "…0001", extra: true } } as never));
    await expect(patch).rejects.toThrow(/Schema check[\s\S]*\.credentialHints\.extra\.values\(\): expected string, got boolean/);
    // The document is unchanged: the write was refused.
    const stored = await t.run((ctx) => ctx.db.get("connections", connectionId));
    expect(stored?.credentialHints).toEqual({ token: "…0001" });
  });

  test("the cold harness's backends are checked too", async () => {
    const harness = new ColdHarness();
    const t = harness.backend();
    await expect(t.run((ctx) => ctx.db.insert("users", { tokenIdentifier: 1 } as never))).rejects.toThrow(/Schema check/);
  });

  test("documents the functions write pass", async () => {
    const t = newBackend();
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.users.store, {});
    const projectId = await alice.mutation(api.projects.create, { name: "Acme" });
    expect(projectId).toBeTruthy();
  });
});

describe("transaction limits are on by default", () => {
  test("newBackend refuses a transaction over Convex's 16,000 writes", async () => {
    const t = newBackend();
    const write = t.run(async (ctx) => {
      for (let i = 0; i < 16_001; i++) await ctx.db.insert("encryptionSettings", { rootSalt: "x", createdAt: i });
    });
    await expect(write).rejects.toThrow(/write|limit/i);
  });
});

describe("PBKDF2 budget per query and mutation", () => {
  async function pbkdf2(): Promise<void> {
    const key = await crypto.subtle.importKey("raw", new Uint8Array(8), "PBKDF2", false, ["deriveBits"]);
    await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(8), iterations: 1 }, key, 256);
  }

  test(`a mutation over ${PBKDF2_BUDGET} runs is reported, with nested queries counted against it; actions are not held to it`, async () => {
    takeExecutions();
    await trackExecution("fake:mutation", "mutation", async () => {
      for (let i = 0; i < PBKDF2_BUDGET; i++) await pbkdf2();
      await trackExecution("fake:nestedQuery", "query", () => pbkdf2());
    });
    await trackExecution("fake:action", "action", async () => {
      for (let i = 0; i <= PBKDF2_BUDGET; i++) await pbkdf2();
    });
    await trackExecution("fake:query", "query", () => pbkdf2());
    const recorded = takeExecutions();
    expect(recorded.map((execution) => [execution.path, execution.pbkdf2])).toEqual([
      ["fake:mutation", PBKDF2_BUDGET + 1],
      ["fake:nestedQuery", 1],
      ["fake:action", PBKDF2_BUDGET + 1],
      ["fake:query", 1],
    ]);
    const message = budgetViolations(recorded);
    expect(message).toContain(`mutation fake:mutation: ${PBKDF2_BUDGET + 1} PBKDF2 runs`);
    expect(message).not.toContain("fake:action");
    expect(message).not.toContain("fake:query");
  });

  test("work started by an execution after it finished (a scheduled function) does not count against it", async () => {
    takeExecutions();
    let later: Promise<void> = Promise.resolve();
    await trackExecution("fake:scheduler", "mutation", async () => {
      later = new Promise((resolve) => setTimeout(resolve, 5)).then(() => pbkdf2());
    });
    await later;
    expect(takeExecutions().map((execution) => execution.pbkdf2)).toEqual([0]);
  });

  test("real function executions are recorded with their kind and PBKDF2 runs", async () => {
    takeExecutions();
    const t = newBackend();
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.users.store, {});
    await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: "sk-proj-HarnessTestKey0000000000000000001" });
    const recorded = takeExecutions();
    expect(recorded.map((execution) => [execution.path, execution.kind])).toEqual([
      ["users:store", "mutation"],
      ["aiKeys:set", "mutation"],
    ]);
    expect(recorded[1]!.pbkdf2).toBe(1);
  });
});
