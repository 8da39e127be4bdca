/**
 * Master-key rotation throughput (`npm run bench`). Prints, per scenario:
 * rows re-encrypted per second, PBKDF2 derivations performed against the
 * ideal (2 per distinct salt: one to decrypt under the old key, one to
 * encrypt under the new; plus one id per master key), and elapsed time
 * against the ideal time (ideal derivations × the measured cost of one
 * derivation). Asserts nothing about time.
 *
 * "warm cache" runs every batch in one isolate; "cold cache" clears the
 * derived-key and key-id caches before each batch, as when each batch lands
 * in a fresh isolate, which is what the per-batch derivation budget is sized
 * for (keyring loading included).
 */
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import { MAX_DERIVATIONS_PER_BATCH } from "../convex/keyRotation";
import { deriveAesGcmKey, DEFAULT_PBKDF2_ITERATIONS } from "../convex/lib/kdf";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "../test/helpers/keys";
import {
  derivationCount,
  newLimitedBackend,
  runOneBatch,
  seedEncrypted,
  simulateFreshIsolate,
  type Sizes,
} from "../test/helpers/rotation";

const SIZES: Sizes = { projects: 100, connectionsPerProject: 10, users: 100 };

beforeEach(() => {
  // Fake only the scheduler's timers, so performance.now() measures real time.
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
  // The job's operator logs (one line per batch) would bury the results.
  vi.spyOn(console, "info").mockImplementation(() => undefined);
  vi.spyOn(console, "warn").mockImplementation(() => undefined);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Mean wall-clock cost of one PBKDF2 derivation, in ms, over `samples` fresh salts. */
async function measureDerivationMs(samples: number): Promise<number> {
  const password = new TextEncoder().encode(SECOND_MASTER_KEY);
  const started = performance.now();
  for (let i = 0; i < samples; i++) {
    await deriveAesGcmKey(password, new TextEncoder().encode(`bench-salt-${i}-${Math.random()}`), DEFAULT_PBKDF2_ITERATIONS);
  }
  return (performance.now() - started) / samples;
}

async function rotationScenario(name: string, coldCachePerBatch: boolean, derivationMs: number) {
  const t = newLimitedBackend();
  await seedEncrypted(t, SIZES, TEST_MASTER_KEY);
  vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
  vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
  simulateFreshIsolate();

  const derivationsBefore = derivationCount();
  const started = performance.now();
  await t.mutation(internal.keyRotation.rotate, {});
  for (;;) {
    const status = (await t.query(internal.keyRotation.status, {})).job;
    if (status?.status !== "running") break;
    if (coldCachePerBatch) simulateFreshIsolate();
    await runOneBatch(t);
  }
  const elapsedMs = performance.now() - started;
  const derivations = derivationCount() - derivationsBefore;

  const status = (await t.query(internal.keyRotation.status, {})).job;
  expect(status?.status).toBe("done");
  const rows = status?.counts.reEncrypted ?? 0;
  const idealDerivations = (SIZES.projects + SIZES.users) * 2 + 2; // + the two master-key ids
  const idealMs = idealDerivations * derivationMs;
  console.log(
    [
      `rotation, ${name}: ${rows} rows in ${(elapsedMs / 1000).toFixed(2)} s = ${((rows * 1000) / elapsedMs).toFixed(0)} rows/s ` +
        `(${status?.batches} batches, max ${status?.maxBatchRows} rows and ${status?.maxBatchDerivations} derivations per batch, ` +
        `budget ${status?.derivationBudget}, new jobs ${MAX_DERIVATIONS_PER_BATCH})`,
      `  derivations: ${derivations} performed / ${idealDerivations} ideal = ${(derivations / idealDerivations).toFixed(2)}x`,
      `  time: ${elapsedMs.toFixed(0)} ms / ${idealMs.toFixed(0)} ms ideal (${idealDerivations} × ${derivationMs.toFixed(1)} ms) = ${(elapsedMs / idealMs).toFixed(2)}x`,
      `  longest batch: ${status?.maxBatchDerivations} × ${derivationMs.toFixed(1)} ms = ${((status?.maxBatchDerivations ?? 0) * derivationMs).toFixed(0)} ms of PBKDF2 (limit 1000 ms per mutation)`,
    ].join("\n"),
  );
}

test("rotation throughput and derivations against the ideal", async () => {
  const derivationMs = await measureDerivationMs(20);
  console.log(`one PBKDF2-SHA256 derivation (${DEFAULT_PBKDF2_ITERATIONS} iterations): ${derivationMs.toFixed(1)} ms`);
  await rotationScenario("warm cache", false, derivationMs);
  await rotationScenario("cold cache per batch", true, derivationMs);
});
