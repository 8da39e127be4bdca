/**
 * The cold harness itself (helpers/cold.ts): every execution gets a fresh
 * module graph, executions are counted once each (nested, scheduled and HTTP
 * ones included), and PBKDF2 runs and HMAC signs are counted at crypto.subtle and
 * restored afterwards.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import * as staticProjects from "../convex/projects";
import * as staticCipher from "../convex/lib/cipher";
import { identity } from "./helpers/convex";
import { ColdHarness, useColdHarness } from "./helpers/cold";

const harness = useColdHarness();

afterEach(() => {
  vi.useRealTimers();
});

async function pbkdf2Once(): Promise<void> {
  const password = await crypto.subtle.importKey("raw", new TextEncoder().encode("password"), "PBKDF2", false, ["deriveBits"]);
  await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations: 1 }, password, 256);
}

async function hmacOnce(): Promise<void> {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  await crypto.subtle.sign("HMAC", key, new Uint8Array(3));
}

describe("fresh module graph per execution", () => {
  test("each execution loads new instances of the project's modules, lib included; convex-test keeps its data", async () => {
    const t = harness.backend();
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.projects.create, { name: "Acme" });
    const afterFirst = (await import("../convex/lib/cipher")) as unknown;
    await alice.query(api.projects.list, {});
    const afterSecond = (await import("../convex/lib/cipher")) as unknown;

    const projectsLoads = harness.loadedModules.filter((load) => load.path === "projects").map((load) => load.module);
    expect(projectsLoads).toHaveLength(2);
    expect(projectsLoads[0]).not.toBe(projectsLoads[1]);
    expect(projectsLoads[0]).not.toBe(staticProjects);
    // lib modules are part of the graph: the instance a load leaves in the registry is new each time.
    expect(afterFirst).not.toBe(staticCipher);
    expect(afterSecond).not.toBe(afterFirst);
    // convex-test's state (the database) is not reset: the project is still there.
    expect(await alice.query(api.projects.list, {})).toHaveLength(1);
  });

  test("a module-level value set in one execution's graph is gone in the next", async () => {
    const t = harness.backend();
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.projects.create, { name: "Acme" });
    const first = harness.loadedModules.at(-1)?.module as { MAX_PROJECTS_LISTED: number } & Record<string, unknown>;
    // Module state a warm isolate would keep: an exported binding's object, marked in this instance.
    const marker = Symbol("warm");
    (first.list as Record<symbol, boolean>)[marker] = true;
    await alice.query(api.projects.list, {});
    const second = harness.loadedModules.at(-1)?.module as Record<string, unknown>;
    expect(second).not.toBe(first);
    expect((second.list as Record<symbol, boolean>)[marker]).toBeUndefined();
  });
});

describe("executions", () => {
  test("top-level and nested calls are each recorded once, with their path", async () => {
    const t = harness.backend();
    const alice = t.withIdentity(identity("alice"));
    const { counts } = await harness.measure(() => alice.mutation(api.projects.create, { name: "Acme" }));
    expect(counts.executions.map((execution) => execution.path)).toEqual(["projects:create"]);
    expect(counts.loads).toEqual(["projects"]);

    const viaAction = await harness.measure(() =>
      t.action(async (ctx) => {
        await ctx.runQuery(internal.users.getByTokenIdentifier, { tokenIdentifier: "nobody" });
        await ctx.runMutation(internal.access.rateLimits.consume, { name: "aiKeyCheck", key: "cold-harness" });
      }),
    );
    // The inline action is the test's own code (no module load); its nested calls are executions.
    expect(viaAction.counts.executions.map((execution) => execution.path)).toEqual([
      "users:getByTokenIdentifier",
      "access/rateLimits:consume",
    ]);
  });

  test("scheduled functions are executions; convex-test loads their module twice (fun, then the typed call)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    vi.spyOn(console, "info").mockImplementation(() => undefined);
    const t = harness.backend();
    const { counts } = await harness.measure(async () => {
      await t.mutation(internal.keyRotation.rotate, { dryRun: true });
      await t.finishAllScheduledFunctions(() => vi.runAllTimers());
    });
    // An empty deployment: rotate schedules the first batch, and each batch the next, until the job ends.
    const paths = counts.executions.map((execution) => execution.path);
    const batches = paths.filter((path) => path === "keyRotation:runBatch").length;
    expect(paths[0]).toBe("keyRotation:rotate");
    expect(batches).toBeGreaterThan(1);
    expect(paths).toHaveLength(1 + batches);
    expect(counts.loads).toHaveLength(1 + 2 * batches);
    vi.restoreAllMocks();
  });

  test("HTTP actions and their nested queries are executions", async () => {
    const t = harness.backend();
    const { counts, result } = await harness.measure(() =>
      t.fetch("/api/v1/projects/metrics", { headers: { Authorization: "Bearer dt_live_unknown" } }),
    );
    expect(result.status).toBe(401);
    const paths = counts.executions.map((execution) => execution.path);
    expect(paths[0]).toBe("http:GET /api/v1/projects/metrics");
    expect(paths).toContain("apiKeys:authenticate");
    expect(counts.loads.filter((path) => path === "http")).toHaveLength(1);
  });
});

describe("crypto counters", () => {
  test("PBKDF2 derivations and HMAC signs are counted separately, outside executions too", async () => {
    await pbkdf2Once();
    await hmacOnce();
    await hmacOnce();
    expect(harness.counts.pbkdf2).toBe(1);
    expect(harness.counts.hmac).toBe(2);
    expect(harness.counts.executions).toEqual([]);
  });

  test("runs inside an execution are attributed to it", async () => {
    const t = harness.backend();
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.users.store, {});
    const { counts } = await harness.measure(() =>
      alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: "sk-proj-ColdHarnessTestKey000000000001" }),
    );
    const [set] = counts.executions;
    expect(set?.path).toBe("aiKeys:set");
    expect(set?.pbkdf2).toBe(counts.pbkdf2);
    expect(counts.pbkdf2).toBeGreaterThanOrEqual(1);
    // HKDF from HMAC: one sign to extract the root's PRK, one per expanded key id or AES key.
    expect(set?.hmac).toBe(counts.hmac);
    expect(counts.hmac).toBeGreaterThanOrEqual(3);
  });

  test("uninstall restores crypto.subtle", async () => {
    harness.uninstall();
    const { deriveBits, deriveKey, sign } = crypto.subtle;
    expect(Object.hasOwn(crypto.subtle, "deriveBits")).toBe(false);
    const own = new ColdHarness();
    own.install();
    expect(crypto.subtle.deriveBits).not.toBe(deriveBits);
    own.uninstall();
    expect(crypto.subtle.deriveBits).toBe(deriveBits);
    expect(crypto.subtle.deriveKey).toBe(deriveKey);
    expect(crypto.subtle.sign).toBe(sign);
    expect(Object.hasOwn(crypto.subtle, "deriveBits")).toBe(false);
    await pbkdf2Once();
    expect(own.counts.pbkdf2).toBe(0);
  });
});
