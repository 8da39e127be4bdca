/**
 * Cold cost of a master-key rotation, per batch: every batch is its own
 * mutation in production, so it runs on a fresh module graph here too
 * (helpers/cold.ts), with Convex's transaction limits enforced. A batch
 * touches secrets of many salts (projects and users) under two master keys
 * (old and new): it may run PBKDF2 at most once per master key, whatever the
 * number of salts. Counting only: no timing.
 */
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { useColdHarness, type ColdBackend } from "./helpers/cold";
import { identity } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "./helpers/keys";

const harness = useColdHarness();

const PROJECTS = 4;
const CONNECTIONS_PER_PROJECT = 3;
const USERS = 3;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
  vi.spyOn(console, "info").mockImplementation(() => undefined);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Projects with connections and users with AI keys, written through the public API under the current key. */
async function seed(t: ColdBackend): Promise<void> {
  for (let u = 0; u < USERS; u++) {
    const user = t.withIdentity(identity(`user${u}`));
    await user.mutation(api.aiKeys.set, { provider: "openai", apiKey: `sk-proj-RotationCostTestKey${u}000000000000000` });
    for (let p = u; p < PROJECTS; p += USERS) {
      const projectId = await user.mutation(api.projects.create, { name: `Project ${p}` });
      for (let c = 0; c < CONNECTIONS_PER_PROJECT; c++) {
        await user.mutation(api.connections.create, {
          projectId,
          service: "stripe",
          credentials: { secretKey: `sk_live_RotationCost${p}x${c}0000000000` },
        });
      }
    }
  }
}

test("every rotation batch runs PBKDF2 at most once per master key, however many salts it touches", async () => {
  const t = harness.backend({ transactionLimits: true });
  await seed(t);
  vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
  vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
  harness.reset();

  await t.mutation(internal.keyRotation.rotate, {});
  const batches: { phase: string; table: string; pbkdf2: number }[] = [];
  for (let guard = 0; guard < 1_000; guard++) {
    const before = await t.run((ctx) => ctx.db.query("reencryptionJobs").order("desc").first());
    if (before?.status !== "running") break;
    const { counts } = await harness.measure(async () => {
      vi.runOnlyPendingTimers();
      await t.finishInProgressScheduledFunctions();
    });
    const runs = counts.executions.filter((execution) => execution.path === "keyRotation:runBatch");
    expect(runs).toHaveLength(1);
    batches.push({ phase: before.phase, table: before.table, pbkdf2: runs[0]!.pbkdf2 });
  }
  const status = await t.run((ctx) => ctx.db.query("reencryptionJobs").order("desc").first());
  expect(status?.status).toBe("done");
  expect(status?.counts.failed).toBe(0);
  expect(status?.counts.reEncrypted).toBe(PROJECTS * CONNECTIONS_PER_PROJECT + USERS);

  const rotateBatches = batches.filter((batch) => batch.phase === "rewrite");
  expect(rotateBatches.length).toBeGreaterThan(0);
  const perBatch = batches.map((batch) => `${batch.phase} ${batch.table}=${batch.pbkdf2}`).join(", ");
  // Two master keys in use (the new one writes, the old one is met): at most one PBKDF2 each per batch.
  for (const batch of batches) expect(batch.pbkdf2, `PBKDF2 per batch: ${perBatch}`).toBeLessThanOrEqual(2);
  // Each table of this small deployment is rotated in one batch: salts do not split batches.
  const rotatedTables = rotateBatches.map((batch) => batch.table);
  expect(rotatedTables, `PBKDF2 per batch: ${perBatch}`).toEqual([...new Set(rotatedTables)]);
});
