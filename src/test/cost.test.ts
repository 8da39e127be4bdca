/**
 * What each secret-touching public function costs in production, where
 * every execution is cold: PBKDF2 runs per call, counted at crypto.subtle by
 * the cold harness (helpers/cold.ts), never by the project's own counters.
 * Targets (issue 13): at most one PBKDF2 per call per master key actually
 * used; old master keys are derived only when a value under them is read.
 * Counting only: no timing.
 */
import { describe, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { maxPbkdf2, useColdHarness, type ColdCounts } from "./helpers/cold";
import { CASES, world, type Case, type World } from "./helpers/costCases";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "./helpers/keys";
import { SECRETS, useFakeProviders } from "./helpers/secrets";

const harness = useColdHarness();
const fake = useFakeProviders();

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
        const w = await world(harness);
        const counts = await expectCost(w, testCase, 1);
        if (testCase.reads || testCase.writes) expect(counts.pbkdf2, "a secret was really touched").toBe(1);
      });
    }
  });

  describe("OLD_MASTER_KEY set, every value under the current key: still at most 1 (old keys never derived on load)", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        vi.stubEnv("OLD_MASTER_KEY", `${SECOND_MASTER_KEY},${THIRD_MASTER_KEY}`);
        const w = await world(harness);
        await expectCost(w, testCase, 1);
      });
    }
  });

  describe("while rotating (one old key, values under it): at most 1 + the old key when a value under it is read", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        const w = await world(harness);
        vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
        vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
        await expectCost(w, testCase, 1 + (testCase.reads ? 1 : 0));
      });
    }
  });

  describe("while rotating (two old keys, values under the second): at most 1 + the old keys actually met", () => {
    for (const testCase of CASES) {
      /*
       * KNOWN GAP (issue 13): a read derives the root of every key tried before the one whose id
       * the value carries (current, then OLD_MASTER_KEY in order): 3 here, where only one old key
       * is met. Remove `.fails` when reads find the key without deriving the others (e.g. a key
       * hint from the ids the rotation job stored). Writes meet no old key and pass.
       */
      const run = testCase.reads ? test.fails : test;
      run(testCase.name, async () => {
        const w = await world(harness);
        vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
        vi.stubEnv("OLD_MASTER_KEY", `${THIRD_MASTER_KEY},${TEST_MASTER_KEY}`);
        await expectCost(w, testCase, 1 + (testCase.reads ? 1 : 0));
      });
    }
  });
});

describe("functions that touch no stored secret derive nothing", () => {
  test("ai.verifyKey checks the key it is given (no decryption, no PBKDF2)", async () => {
    const w = await world(harness);
    const { counts } = await harness.measure(() =>
      w.alice.action(api.ai.verifyKey, { provider: "openai", apiKey: SECRETS.openaiKey }),
    );
    expect(fake().requests.some((request) => request.route === "openai.models")).toBe(true);
    expect(counts.pbkdf2).toBe(0);
  });
});
