/**
 * What each secret-touching public function costs in production, where
 * every execution is cold: PBKDF2 runs per call, counted at crypto.subtle by
 * the cold harness (helpers/cold.ts), never by the project's own counters.
 * Targets (issue 13): at most one PBKDF2 per call per master key actually
 * used; old master keys are derived only when a value under them is read.
 * Counting only: no timing.
 */
import { describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { maxPbkdf2, useColdHarness, type ColdBackend, type ColdCounts } from "./helpers/cold";
import { identity } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "./helpers/keys";
import { SECRETS, useFakeProviders } from "./helpers/secrets";

const harness = useColdHarness();
const fake = useFakeProviders();

type Caller = ReturnType<ColdBackend["withIdentity"]>;

/** A project with a Stripe connection, a metric point and alice's OpenAI key, all written through the public API. */
interface World {
  t: ColdBackend;
  alice: Caller;
  projectId: Id<"projects">;
  connectionId: Id<"connections">;
}

async function world(): Promise<World> {
  const t = harness.backend();
  const alice = t.withIdentity(identity("alice"));
  const projectId = await alice.mutation(api.projects.create, { name: "Acme" });
  const connectionId = await alice.mutation(api.connections.create, {
    projectId,
    service: "stripe",
    credentials: { secretKey: SECRETS.stripeKey },
  });
  await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey });
  await t.run((ctx) =>
    ctx.db.insert("metrics", { connectionId, projectId, name: "balance_usd", value: 12, timestamp: Date.UTC(2025, 0, 1) }),
  );
  return { t, alice, projectId, connectionId };
}

interface Case {
  name: string;
  /** True when the call reads a stored secret (so it meets the key the secret is under). */
  reads: boolean;
  /** True when the call writes a new secret (under the current key). */
  writes: boolean;
  call: (w: World) => Promise<unknown>;
}

const CASES: Case[] = [
  {
    name: "connections.create",
    reads: false,
    writes: true,
    call: ({ alice, projectId }) =>
      alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: `${SECRETS.stripeKey}2` } }),
  },
  {
    name: "connections.updateCredentials",
    reads: false,
    writes: true,
    call: ({ alice, connectionId }) =>
      alice.mutation(api.connections.updateCredentials, { connectionId, credentials: { secretKey: SECRETS.stripeKey } }),
  },
  {
    name: "connections.syncMetrics",
    reads: true,
    writes: false,
    call: ({ alice, connectionId }) => alice.action(api.connections.syncMetrics, { connectionId }),
  },
  {
    name: "metricsSync.syncConnection (the cron's unit of work)",
    reads: true,
    writes: false,
    call: ({ t, connectionId }) => t.action(internal.metricsSync.syncConnection, { connectionId }),
  },
  {
    name: "aiKeys.set",
    reads: false,
    writes: true,
    call: ({ alice }) => alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey }),
  },
  {
    name: "ai.generateInsight",
    reads: true,
    writes: false,
    call: ({ alice, projectId }) => alice.action(api.ai.generateInsight, { projectId }),
  },
];

/** Per-execution PBKDF2 runs, for failure messages. */
function breakdown(counts: ColdCounts): string {
  return counts.executions.map((execution) => `${execution.path}=${execution.pbkdf2}`).join(", ");
}

/** Runs `call` cold and checks the PBKDF2 runs of the whole call (all its executions) against `limit`. */
async function expectCost(w: World, testCase: Case, limit: number): Promise<ColdCounts> {
  const { counts } = await harness.measure(() => testCase.call(w));
  expect(counts.executions.length, "the call ran through the harness").toBeGreaterThan(0);
  expect(counts.pbkdf2, `${testCase.name}: PBKDF2 runs per call (${breakdown(counts)})`).toBeLessThanOrEqual(limit);
  expect(maxPbkdf2(counts)).toBeLessThanOrEqual(limit);
  return counts;
}

describe("cold PBKDF2 runs per call", () => {
  describe("without OLD_MASTER_KEY: at most 1", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        const w = await world();
        const counts = await expectCost(w, testCase, 1);
        if (testCase.reads || testCase.writes) expect(counts.pbkdf2, "a secret was really touched").toBe(1);
      });
    }
  });

  describe("OLD_MASTER_KEY set, every value under the current key: still at most 1 (old keys never derived on load)", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        vi.stubEnv("OLD_MASTER_KEY", `${SECOND_MASTER_KEY},${THIRD_MASTER_KEY}`);
        const w = await world();
        await expectCost(w, testCase, 1);
      });
    }
  });

  describe("while rotating (values under the old key): at most 1 + the old keys actually met", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        const w = await world();
        vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
        vi.stubEnv("OLD_MASTER_KEY", `${THIRD_MASTER_KEY},${TEST_MASTER_KEY}`);
        const oldKeysMet = testCase.reads ? 1 : 0;
        await expectCost(w, testCase, 1 + oldKeysMet);
      });
    }
  });
});

describe("functions that touch no stored secret derive nothing", () => {
  test("ai.verifyKey checks the key it is given (no decryption, no PBKDF2)", async () => {
    const w = await world();
    const { counts } = await harness.measure(() =>
      w.alice.action(api.ai.verifyKey, { provider: "openai", apiKey: SECRETS.openaiKey }),
    );
    expect(fake().requests.some((request) => request.route === "openai.models")).toBe(true);
    expect(counts.pbkdf2).toBe(0);
  });
});
