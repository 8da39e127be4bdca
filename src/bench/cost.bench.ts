/**
 * Cold cost per call (`npm run bench`): for every public function that
 * touches a secret, PBKDF2 runs and milliseconds per call with a fresh
 * module graph per function execution (src/test/helpers/cold.ts), as
 * Convex runs them, next to the original Dashtray design (1 PBKDF2 per
 * operation) and the v1 design (a key id per master key + 1 per salt), both
 * measured in this runtime (designs.ts). Two situations: no OLD_MASTER_KEY,
 * and rotating (one old key, the secret still under it).
 *
 * Columns: PBKDF2/call is the most any sample made; "ms/call" is the median
 * wall time of a whole cold call (module loading, convex-test, crypto,
 * provider round trip to the local fake); "PBKDF2 ms" the median time spent
 * in PBKDF2 during it. BENCH_CALLS sets the samples per row (default 5).
 * Asserts nothing about time.
 */
import { expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { useColdHarness } from "../test/helpers/cold";
import { CASES, world } from "../test/helpers/costCases";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "../test/helpers/keys";
import { useFakeProviders } from "../test/helpers/secrets";
import { envInt, median, medianMs, originalOperation, table, v1Call } from "./designs";

/** console.log as it was before useFakeProviders silences the console for each test. */
const print = console.log.bind(console);
const harness = useColdHarness();
useFakeProviders();

const CALLS = envInt("BENCH_CALLS", 5);
const SALT = "k57a1b2c3d4e5f6g7h8j9k0m1n2p3q4r"; // shaped like a Convex id
const PURPOSE = `connections/${SALT}/credentials`;
const PLAINTEXT = JSON.stringify({ secretKey: "sk_live_51HxBenchmarkSecretValue0000000000000000" });

interface Row {
  name: string;
  pbkdf2: number;
  ms: number;
  pbkdf2Ms: number;
}

async function measureCase(index: number, rotating: boolean): Promise<Row> {
  const testCase = CASES[index]!;
  const samples: { pbkdf2: number; ms: number; pbkdf2Ms: number }[] = [];
  for (let sample = 0; sample < CALLS; sample++) {
    vi.stubEnv("MASTER_ENCRYPTION_KEY", TEST_MASTER_KEY);
    vi.stubEnv("OLD_MASTER_KEY", "");
    const w = await world(harness);
    if (rotating) {
      vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
      vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
    }
    const started = performance.now();
    const { counts } = await harness.measure(() => testCase.call(w));
    samples.push({ pbkdf2: counts.pbkdf2, ms: performance.now() - started, pbkdf2Ms: counts.pbkdf2Ms });
  }
  return {
    name: testCase.name,
    pbkdf2: Math.max(...samples.map((s) => s.pbkdf2)),
    ms: median(samples.map((s) => s.ms)),
    pbkdf2Ms: median(samples.map((s) => s.pbkdf2Ms)),
  };
}

test("cold cost per call against the original and v1 designs", async () => {
  // The reference designs, timed in this runtime (outside any function execution).
  const originalMs = await medianMs(CALLS, () => originalOperation(TEST_MASTER_KEY, SALT, PLAINTEXT));
  const v1Ms = await medianMs(CALLS, () => v1Call([TEST_MASTER_KEY], SALT, PURPOSE, PLAINTEXT));
  const v1RotatingMs = await medianMs(CALLS, () => v1Call([SECOND_MASTER_KEY, TEST_MASTER_KEY], SALT, PURPOSE, PLAINTEXT));

  // What a cold call costs with no crypto at all: module loading and convex-test.
  const w = await world(harness);
  const baseMs = await medianMs(CALLS, () => w.alice.query(api.projects.list, {}));

  const sections: string[] = [];
  for (const rotating of [false, true]) {
    const rows: string[][] = [
      ["function (cold)", "PBKDF2/call", "ms/call", "PBKDF2 ms", "original", "orig. ms", "v1", "v1 ms", "vs original", "vs v1"],
    ];
    for (let index = 0; index < CASES.length; index++) {
      const row = await measureCase(index, rotating);
      const v1Runs = rotating ? 3 : 2;
      const v1RowMs = rotating ? v1RotatingMs : v1Ms;
      expect(row.pbkdf2).toBeGreaterThan(0);
      rows.push([
        row.name,
        `${row.pbkdf2}`,
        row.ms.toFixed(0),
        row.pbkdf2Ms.toFixed(0),
        "1",
        originalMs.toFixed(0),
        `${v1Runs}`,
        v1RowMs.toFixed(0),
        `${(row.pbkdf2 / 1).toFixed(2)}x`,
        `${(row.pbkdf2 / v1Runs).toFixed(2)}x`,
      ]);
    }
    sections.push(
      rotating
        ? "Rotating: MASTER_ENCRYPTION_KEY new, OLD_MASTER_KEY = the key the secrets are under"
        : "No OLD_MASTER_KEY",
      table(rows),
      "",
    );
  }
  print(
    [
      "",
      `Cold cost per call (fresh module graph per function execution; median of ${CALLS} calls; "vs" columns compare PBKDF2 runs)`,
      `original = 1 PBKDF2 per operation (legacy design), v1 = key id per master key + 1 per salt; both measured here`,
      `a cold call that derives nothing (projects.list) takes ${baseMs.toFixed(0)} ms here: module loading and convex-test, not crypto`,
      "",
      ...sections,
    ].join("\n"),
  );
});
