import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import type { Doc, Id } from "../convex/_generated/dataModel";
import { MAX_DERIVATIONS_PER_BATCH, MAX_ROWS_PER_BATCH } from "../convex/keyRotation";
import { describeCiphertext } from "../convex/lib/cipher";
import { sha256Hex } from "../convex/lib/hash";
import { sharedKeyCache } from "../convex/lib/kdf";
import { Keyring } from "../convex/lib/keyring";
import { maskSecret } from "../convex/lib/mask";
import { decryptAiKey, decryptCredentials, encryptCredentials } from "../convex/secrets";
import type { Credentials } from "../convex/validators";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "./helpers/keys";
import { encryptLegacy } from "./helpers/legacy";
import {
  derivationCount,
  newLimitedBackend,
  randomText,
  runAllBatches,
  runOneBatch,
  seedEncrypted,
  simulateFreshIsolate,
  snapshotTables,
  type LimitedBackend,
  type Seeded,
} from "./helpers/rotation";

const OLD_KEY = TEST_MASTER_KEY;
const NEW_KEY = SECOND_MASTER_KEY;

let newOnly: Keyring;
let oldOnly: Keyring;

beforeEach(async () => {
  vi.useFakeTimers();
  newOnly = await Keyring.fromSecrets(NEW_KEY);
  oldOnly = await Keyring.fromSecrets(OLD_KEY);
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Deployment state during a rotation: the new key is current, the old one still decrypts. */
function rotatingEnv() {
  vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
  vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
}

async function jobStatus(t: LimitedBackend) {
  const status = await t.query(internal.keyRotation.status, {});
  if (!status) throw new Error("no rotation job");
  return status;
}

/** Decrypts every seeded row with `keyring` and compares it to the plaintext it was seeded with. */
async function expectSeededIntact(t: LimitedBackend, seeded: Seeded, keyring: Keyring) {
  const rows = await t.run(async (ctx) => ({
    connections: await ctx.db.query("connections").collect(),
    aiKeys: await ctx.db.query("aiKeys").collect(),
  }));
  expect(rows.connections).toHaveLength(seeded.credentials.size);
  expect(rows.aiKeys).toHaveLength(seeded.aiKeys.size);
  for (const row of rows.connections) {
    const { credentials, secret } = await decryptCredentials(keyring, row.projectId, row._id, row.encryptedCredentials ?? "");
    expect(credentials).toEqual(seeded.credentials.get(row._id));
    expect(secret.keyId).toBe(keyring.current.id);
  }
  for (const row of rows.aiKeys) {
    const secret = await decryptAiKey(keyring, row.userId, row.encryptedKey ?? "");
    expect(secret.plaintext).toBe(seeded.aiKeys.get(row._id));
    expect(secret.keyId).toBe(keyring.current.id);
  }
}

/** How many connections and AI keys are stored under the key with `keyId`. */
async function countUnderKey(t: LimitedBackend, keyId: string): Promise<number> {
  const values = await t.run(async (ctx) => [
    ...(await ctx.db.query("connections").collect()).map((row) => row.encryptedCredentials),
    ...(await ctx.db.query("aiKeys").collect()).map((row) => row.encryptedKey),
  ]);
  return values.filter((value) => {
    const shape = value === undefined ? null : describeCiphertext(value);
    return shape?.format === "v1" && shape.keyId === keyId;
  }).length;
}

describe("keyRotation at scale", () => {
  test(
    "re-encrypts 2,000 connections over 200 projects and 200 AI keys; the new key alone then reads everything",
    async () => {
      const t = newLimitedBackend();
      const seeded = await seedEncrypted(t, { projects: 200, connectionsPerProject: 10, users: 200 }, OLD_KEY);
      rotatingEnv();

      const started = await t.mutation(internal.keyRotation.rotate, {});
      expect(started.outcome).toBe("started");
      await runAllBatches(t);

      const status = await jobStatus(t);
      expect(status.status).toBe("done");
      expect(status.counts).toEqual({ scanned: 2200, reEncrypted: 2200, migrated: 0, alreadyCurrent: 0, failed: 0 });
      expect(status.preflight).toMatchObject({ previousKey: 2200, upToDate: 0, unknownKey: 0 });
      expect(status.verification).toMatchObject({ rows: 2200, upToDate: 2200 });
      expect(status.safeToRemoveOldKey).toBe(true);
      expect(status.maxBatchRows).toBeLessThanOrEqual(MAX_ROWS_PER_BATCH);
      expect(status.maxBatchDerivations).toBeLessThanOrEqual(MAX_DERIVATIONS_PER_BATCH);

      vi.stubEnv("OLD_MASTER_KEY", "");
      await expectSeededIntact(t, seeded, newOnly);

      const audit = await t.run((ctx) => ctx.db.query("auditLog").collect());
      expect(audit.map((entry) => [entry.action, entry.targetId])).toEqual([
        ["keyRotation.started", started.jobId],
        ["keyRotation.finished", started.jobId],
      ]);
    },
    180_000,
  );
});

describe("keyRotation batches", () => {
  test("each batch stays within the row and derivation bounds, keyring loading included, in a fresh isolate", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 30, connectionsPerProject: 7, users: 25 }, OLD_KEY);
    // Legacy rows need one derivation per configured key plus one to encrypt.
    const legacyUser = seeded.userIds[0] as Id<"users">;
    await t.run(async (ctx) => {
      const id = await ctx.db.insert("aiKeys", {
        userId: legacyUser,
        provider: "anthropic",
        encryptedKey: await encryptLegacy(OLD_KEY, legacyUser, "sk-ant-legacy-000000000000"),
        hint: "",
        createdAt: 0,
        updatedAt: 0,
      });
      seeded.aiKeys.set(id, "sk-ant-legacy-000000000000");
    });
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, {});
    expect((await jobStatus(t)).derivationBudget).toBe(MAX_DERIVATIONS_PER_BATCH);

    const derivationsPerBatch: number[] = [];
    const rowsWrittenPerBatch: number[] = [];
    let before = await snapshotTables(t, ["connections", "aiKeys"]);
    while ((await jobStatus(t)).status === "running") {
      simulateFreshIsolate(); // each batch may run in a fresh isolate: no derived key, no key id cached
      const derivationsBefore = derivationCount();
      await runOneBatch(t);
      derivationsPerBatch.push(derivationCount() - derivationsBefore);
      const after = await snapshotTables(t, ["connections", "aiKeys"]);
      const changed = [...(after.connections ?? []), ...(after.aiKeys ?? [])].filter(
        (row, index) => JSON.stringify(row) !== JSON.stringify([...(before.connections ?? []), ...(before.aiKeys ?? [])][index]),
      );
      rowsWrittenPerBatch.push(changed.length);
      before = after;
    }

    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.counts).toMatchObject({ reEncrypted: 235, migrated: 1, failed: 0 });
    // A cold keyring load (the current and the old key's ids) counts toward every batch, even a scan batch.
    expect(derivationsPerBatch[0]).toBe(2);
    expect(Math.min(...derivationsPerBatch)).toBe(2);
    expect(Math.max(...derivationsPerBatch)).toBeLessThanOrEqual(MAX_DERIVATIONS_PER_BATCH);
    // The derivation budget, not the row budget, is what cut these batches short.
    expect(Math.max(...derivationsPerBatch)).toBeGreaterThanOrEqual(MAX_DERIVATIONS_PER_BATCH - 2);
    expect(Math.max(...rowsWrittenPerBatch)).toBeLessThan(MAX_ROWS_PER_BATCH);
    expect(status.maxBatchDerivations).toBe(Math.max(...derivationsPerBatch));
    expect(status.maxBatchRows).toBeLessThanOrEqual(MAX_ROWS_PER_BATCH);
    expect(status.batches).toBe(derivationsPerBatch.length);
    await expectSeededIntact(t, seeded, newOnly);
  });

  test("a batch that throws midway rolls back; rotate halves the budget, resumes from the cursor and nothing is lost", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 12, connectionsPerProject: 5, users: 10 }, OLD_KEY);
    rotatingEnv();
    sharedKeyCache.clear(); // no derived key cached: 2 derivations per project (the keyring stays loaded)
    await t.mutation(internal.keyRotation.rotate, {});

    // The first rotate batch re-encrypts 20 rows (8 derivations, 2 per project); the 30th
    // encryption is the 10th row of the second batch.
    const encrypt = crypto.subtle.encrypt.bind(crypto.subtle);
    let encryptions = 0;
    const spy = vi.spyOn(crypto.subtle, "encrypt").mockImplementation((...args: Parameters<SubtleCrypto["encrypt"]>) => {
      encryptions++;
      if (encryptions === 30) return Promise.reject(new Error("injected failure"));
      return encrypt(...args);
    });
    vi.spyOn(console, "error").mockImplementation(() => {});
    await runAllBatches(t);
    spy.mockRestore();

    const broken = await jobStatus(t);
    expect(encryptions).toBe(30);
    expect(broken.status).toBe("running");
    expect(broken.batchState).toBe("failed");
    expect(broken.derivationBudget).toBe(MAX_DERIVATIONS_PER_BATCH);
    expect(broken.counts.reEncrypted).toBe(20);
    // The failed batch's 9 writes were rolled back with it.
    expect(await countUnderKey(t, newOnly.current.id)).toBe(20);

    const resumed = await t.mutation(internal.keyRotation.rotate, {});
    expect(resumed).toEqual({ jobId: broken._id, outcome: "resumed", dryRun: false });
    expect((await jobStatus(t)).derivationBudget).toBe(MAX_DERIVATIONS_PER_BATCH / 2);

    // Every batch after the resume stays within the halved budget, which is what cuts them short.
    const derivationsPerBatch: number[] = [];
    while ((await jobStatus(t)).status === "running") {
      const derivationsBefore = derivationCount();
      await runOneBatch(t);
      derivationsPerBatch.push(derivationCount() - derivationsBefore);
    }
    expect(Math.max(...derivationsPerBatch)).toBe(MAX_DERIVATIONS_PER_BATCH / 2);

    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.resumes).toBe(1);
    expect(status.derivationBudget).toBe(MAX_DERIVATIONS_PER_BATCH / 2);
    expect(status.counts).toEqual({ scanned: 70, reEncrypted: 70, migrated: 0, alreadyCurrent: 0, failed: 0 });
    await expectSeededIntact(t, seeded, newOnly);
  });

  test("a batch chain that keeps exceeding the time limit converges: each resume halves the budget until batches fit", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 6, connectionsPerProject: 3, users: 3 }, OLD_KEY);
    rotatingEnv();

    // Simulated 1 s limit: a transaction dies at its 4th PBKDF2 run (deriveKey: AES keys,
    // deriveBits: key ids), wherever that falls, as Convex kills a mutation that runs too long.
    const TIME_LIMIT_DERIVATIONS = 3;
    let derivationsThisTransaction = 0;
    const countOrDie = () => {
      derivationsThisTransaction++;
      if (derivationsThisTransaction > TIME_LIMIT_DERIVATIONS) throw new Error("simulated: execution time limit exceeded");
    };
    const deriveKey = crypto.subtle.deriveKey.bind(crypto.subtle);
    const deriveBits = crypto.subtle.deriveBits.bind(crypto.subtle);
    vi.spyOn(crypto.subtle, "deriveKey").mockImplementation(async (...args: Parameters<SubtleCrypto["deriveKey"]>) => {
      countOrDie();
      return deriveKey(...args);
    });
    vi.spyOn(crypto.subtle, "deriveBits").mockImplementation(async (...args: Parameters<SubtleCrypto["deriveBits"]>) => {
      countOrDie();
      return deriveBits(...args);
    });
    vi.spyOn(console, "error").mockImplementation(() => {});

    const started = await t.mutation(internal.keyRotation.rotate, {});
    const budgetsAfterResumes: number[] = [];
    for (;;) {
      const job = await jobStatus(t);
      if (job.status !== "running") break;
      if (job.batchState === "failed") {
        if (budgetsAfterResumes.length === 5) throw new Error("the job did not converge");
        derivationsThisTransaction = 0;
        expect(await t.mutation(internal.keyRotation.rotate, {})).toMatchObject({ jobId: started.jobId, outcome: "resumed" });
        budgetsAfterResumes.push((await jobStatus(t)).derivationBudget);
        continue;
      }
      sharedKeyCache.clear(); // a fresh isolate's derived keys (the key ids stay cached: the limit is on AES keys here)
      derivationsThisTransaction = 0;
      await runOneBatch(t);
    }

    // 8 derivations (4 projects) died, 4 (2 projects) died, 2 (1 project) fit.
    expect(budgetsAfterResumes).toEqual([4, 2]);
    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.resumes).toBe(2);
    expect(status.maxBatchDerivations).toBeLessThanOrEqual(TIME_LIMIT_DERIVATIONS);
    expect(status.counts).toEqual({ scanned: 21, reEncrypted: 21, migrated: 0, alreadyCurrent: 0, failed: 0 });
    vi.restoreAllMocks();
    await expectSeededIntact(t, seeded, newOnly);
  });

  test("a canceled batch is resumed with half the budget; a job stored before the budget existed starts from the default", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    rotatingEnv();
    const { jobId } = await t.mutation(internal.keyRotation.rotate, {});
    await t.run(async (ctx) => {
      const job = (await ctx.db.get("keyRotationJobs", jobId)) as Doc<"keyRotationJobs">;
      await ctx.scheduler.cancel(job.nextBatchId as Id<"_scheduled_functions">);
      await ctx.db.patch("keyRotationJobs", jobId, { derivationBudget: undefined });
    });
    const canceled = await jobStatus(t);
    expect(canceled.batchState).toBe("canceled");
    expect(canceled.derivationBudget).toBe(MAX_DERIVATIONS_PER_BATCH);

    expect(await t.mutation(internal.keyRotation.rotate, {})).toMatchObject({ jobId, outcome: "resumed" });
    expect((await t.run((ctx) => ctx.db.get("keyRotationJobs", jobId)))?.derivationBudget).toBe(MAX_DERIVATIONS_PER_BATCH / 2);
    await runAllBatches(t);
    expect((await jobStatus(t)).counts).toMatchObject({ reEncrypted: 5, failed: 0 });
    await expectSeededIntact(t, seeded, newOnly);
  });
});

describe("keyRotation during live traffic", () => {
  test("a row written with the new key between batches is counted already current and kept", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 10, connectionsPerProject: 6, users: 3 }, OLD_KEY);
    rotatingEnv();
    sharedKeyCache.clear(); // cold, so the first rotate batch stops after 4 of the 10 projects
    await t.mutation(internal.keyRotation.rotate, {});
    while ((await jobStatus(t)).counts.scanned === 0) await runOneBatch(t);

    const pending = await t.run(async (ctx) =>
      (await ctx.db.query("connections").collect()).find((row) => {
        const shape = describeCiphertext(row.encryptedCredentials ?? "");
        return shape.format === "v1" && shape.keyId === oldOnly.current.id;
      }),
    );
    if (!pending) throw new Error("every row was already rotated");
    const updated: Credentials = { secretKey: `sk_live_${randomText(24)}` };
    const ciphertext = await encryptCredentials(newOnly, pending.projectId, pending._id, updated);
    await t.run((ctx) => ctx.db.patch("connections", pending._id, { encryptedCredentials: ciphertext }));
    seeded.credentials.set(pending._id, updated);

    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status.counts).toEqual({ scanned: 63, reEncrypted: 62, migrated: 0, alreadyCurrent: 1, failed: 0 });
    const stored = await t.run((ctx) => ctx.db.get("connections", pending._id));
    expect(stored?.encryptedCredentials).toBe(ciphertext);
    await expectSeededIntact(t, seeded, newOnly);
  });

  test("a second rotate joins the running job; one started after it finished finds nothing to do", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 3, connectionsPerProject: 2, users: 2 }, OLD_KEY);
    rotatingEnv();
    const first = await t.mutation(internal.keyRotation.rotate, {});
    const second = await t.mutation(internal.keyRotation.rotate, {});
    expect(second).toEqual({ jobId: first.jobId, outcome: "joined", dryRun: false });
    await expect(t.mutation(internal.keyRotation.rotate, { dryRun: true })).rejects.toThrow(/rotation is running/);
    await runAllBatches(t);

    const jobs = await t.run((ctx) => ctx.db.query("keyRotationJobs").collect());
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.counts.reEncrypted).toBe(8);

    const again = await t.mutation(internal.keyRotation.rotate, {});
    expect(again.outcome).toBe("started");
    await runAllBatches(t);
    expect((await jobStatus(t)).counts).toEqual({ scanned: 8, reEncrypted: 0, migrated: 0, alreadyCurrent: 8, failed: 0 });
  });

  test("a dry run whose batches died does not block the real rotation: it is replaced", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    rotatingEnv();
    const dry = await t.mutation(internal.keyRotation.rotate, { dryRun: true });
    await t.run(async (ctx) => {
      const job = (await ctx.db.get("keyRotationJobs", dry.jobId)) as Doc<"keyRotationJobs">;
      await ctx.scheduler.cancel(job.nextBatchId as Id<"_scheduled_functions">);
    });

    const real = await t.mutation(internal.keyRotation.rotate, {});
    expect(real).toMatchObject({ outcome: "started", dryRun: false });
    expect(real.jobId).not.toBe(dry.jobId);
    const replaced = await t.query(internal.keyRotation.status, { jobId: dry.jobId });
    expect(replaced).toMatchObject({ status: "stopped", stopReason: { code: "REPLACED" } });
    await runAllBatches(t);
    expect((await jobStatus(t)).counts).toMatchObject({ reEncrypted: 5, failed: 0 });
    await expectSeededIntact(t, seeded, newOnly);
  });

  test("a job stops when MASTER_ENCRYPTION_KEY changes under it", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, {});
    vi.stubEnv("MASTER_ENCRYPTION_KEY", THIRD_MASTER_KEY);
    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status.status).toBe("stopped");
    expect(status.stopReason?.code).toBe("KEYRING_CHANGED");
    expect(await countUnderKey(t, oldOnly.current.id)).toBe(5);
  });
});

describe("keyRotation failures and refusals", () => {
  test("rows no configured key decrypts are listed as failures and left byte for byte; the job goes on", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 4, connectionsPerProject: 3, users: 2 }, OLD_KEY);
    const third = await Keyring.fromSecrets(THIRD_MASTER_KEY);
    const [unknownId, tamperedId] = [...seeded.credentials.keys()] as [Id<"connections">, Id<"connections">];
    await t.run(async (ctx) => {
      const unknown = (await ctx.db.get("connections", unknownId)) as Doc<"connections">;
      await ctx.db.patch("connections", unknownId, {
        encryptedCredentials: await encryptCredentials(third, unknown.projectId, unknownId, { secretKey: "sk_live_unknownkey0000" }),
      });
      const tampered = (await ctx.db.get("connections", tamperedId)) as Doc<"connections">;
      const value = tampered.encryptedCredentials ?? "";
      const flipped = value.slice(0, -2) + (value.at(-2) === "A" ? "B" : "A") + value.slice(-1);
      await ctx.db.patch("connections", tamperedId, { encryptedCredentials: flipped });
    });
    const before = await t.run(async (ctx) => [await ctx.db.get("connections", unknownId), await ctx.db.get("connections", tamperedId)]);
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);

    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.counts).toEqual({ scanned: 14, reEncrypted: 12, migrated: 0, alreadyCurrent: 0, failed: 2 });
    expect(status.preflight.unknownKey).toBe(1);
    expect(status.verification).toMatchObject({ unknownKey: 1, previousKey: 1 });
    expect(status.safeToRemoveOldKey).toBe(false);
    expect(status.failureSample).toEqual(
      expect.arrayContaining([
        // The key id tells the operator which master key to find.
        { table: "connections", rowId: unknownId, code: "UNKNOWN_KEY_ID", keyId: third.current.id },
        { table: "connections", rowId: tamperedId, code: "DECRYPTION_FAILED", keyId: oldOnly.current.id },
      ]),
    );
    const page = await t.query(internal.keyRotation.failures, {
      jobId: status._id,
      paginationOpts: { numItems: 10, cursor: null },
    });
    expect(page.page.map((failure) => failure.rowId).sort()).toEqual([unknownId, tamperedId].sort());
    const after = await t.run(async (ctx) => [await ctx.db.get("connections", unknownId), await ctx.db.get("connections", tamperedId)]);
    expect(after).toEqual(before);
    // No secret reaches the status or the audit log.
    const audit = await t.run((ctx) => ctx.db.query("auditLog").collect());
    expect(JSON.stringify([status, page, audit])).not.toMatch(/sk_live_/);
  });

  test("values that only look like the current format (another version, malformed) are failures, never current", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    rotatingEnv();
    const [otherVersionId, truncatedId] = [...seeded.credentials.keys()] as [Id<"connections">, Id<"connections">];
    await t.run(async (ctx) => {
      // Both name the current key in their header.
      await ctx.db.patch("connections", otherVersionId, { encryptedCredentials: `dtenc:v2:${newOnly.current.id}:AAAA:BBBB` });
      await ctx.db.patch("connections", truncatedId, { encryptedCredentials: `dtenc:v1:${newOnly.current.id}:x` });
    });
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status.counts).toMatchObject({ failed: 2, reEncrypted: 3 });
    expect(status.failureSample.map((failure) => failure.code).sort()).toEqual(["MALFORMED_CIPHERTEXT", "UNSUPPORTED_VERSION"]);
    expect(status.safeToRemoveOldKey).toBe(false);
  });

  test("a malformed value does not stop a migration that needs no old key", async () => {
    const t = newLimitedBackend();
    const ids = await t.run(async (ctx) => {
      const alice = await ctx.db.insert("users", { tokenIdentifier: "test|alice", createdAt: 0 });
      const bob = await ctx.db.insert("users", { tokenIdentifier: "test|bob", createdAt: 0 });
      const plain = await ctx.db.insert("aiKeys", {
        userId: alice,
        provider: "openai",
        apiKey: "sk-proj-PlaintextLeftByAnOlderVersion01",
        hint: "",
        createdAt: 0,
        updatedAt: 0,
      });
      await ctx.db.insert("aiKeys", { userId: bob, provider: "openai", encryptedKey: "dtenc:v1:garbage", hint: "…", createdAt: 0, updatedAt: 0 });
      return { plain };
    });
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status).toMatchObject({ status: "done", counts: { migrated: 1, failed: 1 } });
    expect((await t.run((ctx) => ctx.db.get("aiKeys", ids.plain)))?.apiKey).toBeUndefined();
  });

  test("safeToRemoveOldKey is false once the keys no longer match the job (the next rotation configured, not started)", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    expect((await jobStatus(t)).safeToRemoveOldKey).toBe(true);
    // Next rotation: everything is under NEW_KEY, which moves into OLD_MASTER_KEY.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", THIRD_MASTER_KEY);
    vi.stubEnv("OLD_MASTER_KEY", NEW_KEY);
    expect((await jobStatus(t)).safeToRemoveOldKey).toBe(false);
    // Another key added to OLD_MASTER_KEY after the job ran: its result no longer covers the keyring either.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", `${OLD_KEY},${THIRD_MASTER_KEY}`);
    expect((await jobStatus(t)).safeToRemoveOldKey).toBe(false);
  });

  test("a dry run counts what would change and writes nothing", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 5, connectionsPerProject: 4, users: 5 }, OLD_KEY);
    const projectId = seeded.projectIds[0] as Id<"projects">;
    await t.run(async (ctx) => {
      await ctx.db.insert("apiKeys", { projectId, name: "legacy", keyHash: "dt_live_plaintextkey000000", prefix: "dt_live_plai", createdAt: 0 });
      await ctx.db.insert("connections", {
        projectId,
        service: "github",
        name: "legacy",
        credentials: { token: "ghp_plaintexttoken0000" },
        credentialHints: {},
        status: "active",
        healthScore: 100,
        createdAt: 0,
        updatedAt: 0,
      });
    });
    rotatingEnv();
    const before = await snapshotTables(t);
    const started = await t.mutation(internal.keyRotation.rotate, { dryRun: true });
    expect(started.dryRun).toBe(true);
    await runAllBatches(t);

    expect(await snapshotTables(t)).toEqual(before);
    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.dryRun).toBe(true);
    expect(status.counts).toEqual({ scanned: 27, reEncrypted: 25, migrated: 2, alreadyCurrent: 0, failed: 0 });
    expect(status.safeToRemoveOldKey).toBe(false);
  });

  test("refuses to start when OLD_MASTER_KEY contains the current key", async () => {
    const t = newLimitedBackend();
    vi.stubEnv("OLD_MASTER_KEY", `${THIRD_MASTER_KEY},${TEST_MASTER_KEY}`);
    await expect(t.mutation(internal.keyRotation.rotate, {})).rejects.toThrow(/OLD_MASTER_KEY contains the current/);
    expect(await t.run((ctx) => ctx.db.query("keyRotationJobs").collect())).toEqual([]);
  });

  test("stops after the scan, before any write, when rows are under an unknown key and no old key is set", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 3, connectionsPerProject: 3, users: 2 }, OLD_KEY);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY); // OLD_MASTER_KEY forgotten
    const before = await snapshotTables(t, ["connections", "aiKeys", "apiKeys"]);
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);

    const status = await jobStatus(t);
    expect(status.status).toBe("stopped");
    expect(status.stopReason?.code).toBe("UNKNOWN_KEYS_WITHOUT_OLD_KEY");
    expect(status.preflight.unknownKey).toBe(11);
    expect(status.counts.scanned).toBe(0);
    expect(await snapshotTables(t, ["connections", "aiKeys", "apiKeys"])).toEqual(before);
    const audit = await t.run((ctx) => ctx.db.query("auditLog").collect());
    expect(audit.map((entry) => entry.detail)).toContain("stopped: UNKNOWN_KEYS_WITHOUT_OLD_KEY");
  });
});

describe("legacy migration", () => {
  test("legacy ciphertext, plaintext credentials, AI keys and API keys are migrated once, plaintext removed", async () => {
    const t = newLimitedBackend();
    const now = Date.now();
    const plainApiKey = `dt_live_${randomText(32)}`;
    const hashedApiKey = await sha256Hex(`dt_live_${randomText(32)}`);
    const legacyOld = { secretKey: `sk_live_${randomText(24)}` };
    const legacyCurrent = { token: `ghp_${randomText(36)}` };
    const plainCredentials = { apiKey: `plausible_${randomText(30)}`, siteId: "example.com" };
    const plainAiKey = `sk-ant-${randomText(40)}`;
    const legacyAiKey = `sk-proj-${randomText(40)}`;

    const ids = await t.run(async (ctx) => {
      const userId = await ctx.db.insert("users", { tokenIdentifier: "legacy|user", createdAt: now });
      const otherUserId = await ctx.db.insert("users", { tokenIdentifier: "legacy|other", createdAt: now });
      const projectId = await ctx.db.insert("projects", { name: "Legacy", createdBy: userId, createdAt: now });
      const base = { projectId, status: "active" as const, healthScore: 100, createdAt: now, updatedAt: now };
      return {
        userId,
        otherUserId,
        projectId,
        legacyOld: await ctx.db.insert("connections", {
          ...base,
          service: "stripe",
          name: "legacy under old key",
          encryptedCredentials: await encryptLegacy(OLD_KEY, projectId, JSON.stringify(legacyOld)),
          credentialHints: {},
        }),
        legacyCurrent: await ctx.db.insert("connections", {
          ...base,
          service: "github",
          name: "legacy under current key",
          encryptedCredentials: await encryptLegacy(NEW_KEY, projectId, JSON.stringify(legacyCurrent)),
          credentialHints: { token: "kept hint" },
        }),
        plain: await ctx.db.insert("connections", {
          ...base,
          service: "plausible",
          name: "plaintext",
          credentials: plainCredentials,
          credentialHints: {},
        }),
        conflicting: await ctx.db.insert("connections", {
          ...base,
          service: "plausible",
          name: "both fields",
          credentials: plainCredentials,
          encryptedCredentials: await encryptLegacy(OLD_KEY, projectId, JSON.stringify(plainCredentials)),
          credentialHints: {},
        }),
        plainAiKey: await ctx.db.insert("aiKeys", { userId, provider: "anthropic", apiKey: plainAiKey, hint: "", createdAt: now, updatedAt: now }),
        legacyAiKey: await ctx.db.insert("aiKeys", {
          userId: otherUserId,
          provider: "openai",
          encryptedKey: await encryptLegacy(OLD_KEY, otherUserId, legacyAiKey),
          hint: "",
          createdAt: now,
          updatedAt: now,
        }),
        plainApiKey: await ctx.db.insert("apiKeys", { projectId, name: "old", keyHash: plainApiKey, prefix: plainApiKey.slice(0, 12), createdAt: now }),
        hashedApiKey: await ctx.db.insert("apiKeys", { projectId, name: "new", keyHash: hashedApiKey, prefix: "dt_live_AbCd", createdAt: now }),
      };
    });
    rotatingEnv();
    const conflictingBefore = await t.run((ctx) => ctx.db.get("connections", ids.conflicting));
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);

    const first = await jobStatus(t);
    expect(first.preflight).toMatchObject({ legacyFormat: 3, plaintext: 3, invalid: 1, upToDate: 1 });
    expect(first.counts).toEqual({ scanned: 8, reEncrypted: 0, migrated: 6, alreadyCurrent: 1, failed: 1 });
    expect(first.failureSample).toEqual([{ table: "connections", rowId: ids.conflicting, code: "CONFLICTING_FIELDS" }]);

    const rows = await t.run(async (ctx) => ({
      legacyOld: await ctx.db.get("connections", ids.legacyOld),
      legacyCurrent: await ctx.db.get("connections", ids.legacyCurrent),
      plain: await ctx.db.get("connections", ids.plain),
      conflicting: await ctx.db.get("connections", ids.conflicting),
      plainAiKey: await ctx.db.get("aiKeys", ids.plainAiKey),
      legacyAiKey: await ctx.db.get("aiKeys", ids.legacyAiKey),
      plainApiKey: await ctx.db.get("apiKeys", ids.plainApiKey),
      hashedApiKey: await ctx.db.get("apiKeys", ids.hashedApiKey),
    }));
    const readConnection = async (row: Doc<"connections"> | null) => {
      const { credentials, secret } = await decryptCredentials(newOnly, ids.projectId, row?._id as Id<"connections">, row?.encryptedCredentials ?? "");
      expect(secret).toMatchObject({ format: "v1", keyId: newOnly.current.id });
      return credentials;
    };
    expect(await readConnection(rows.legacyOld)).toEqual(legacyOld);
    expect(await readConnection(rows.legacyCurrent)).toEqual(legacyCurrent);
    expect(await readConnection(rows.plain)).toEqual(plainCredentials);
    expect(rows.plain?.credentials).toBeUndefined();
    expect(rows.legacyOld?.credentialHints).toEqual({ secretKey: maskSecret(legacyOld.secretKey) });
    expect(rows.legacyCurrent?.credentialHints).toEqual({ token: "kept hint" });
    // Hints as connections.create writes them: secret fields masked, the site id (not secret) in full.
    expect(rows.plain?.credentialHints).toEqual({ apiKey: maskSecret(plainCredentials.apiKey), siteId: plainCredentials.siteId });
    expect(rows.conflicting).toEqual(conflictingBefore);

    expect((await decryptAiKey(newOnly, ids.userId, rows.plainAiKey?.encryptedKey ?? "")).plaintext).toBe(plainAiKey);
    expect(rows.plainAiKey?.apiKey).toBeUndefined();
    expect(rows.plainAiKey?.hint).toBe(maskSecret(plainAiKey));
    expect((await decryptAiKey(newOnly, ids.otherUserId, rows.legacyAiKey?.encryptedKey ?? "")).plaintext).toBe(legacyAiKey);
    expect(rows.plainApiKey?.keyHash).toBe(await sha256Hex(plainApiKey));
    expect(rows.hashedApiKey?.keyHash).toBe(hashedApiKey);
    expect(JSON.stringify(Object.values(rows).filter((row) => row?._id !== ids.conflicting))).not.toContain(plainApiKey);

    // A second run changes nothing.
    const snapshot = await snapshotTables(t, ["connections", "aiKeys", "apiKeys"]);
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    expect((await jobStatus(t)).counts).toEqual({ scanned: 8, reEncrypted: 0, migrated: 0, alreadyCurrent: 7, failed: 1 });
    expect(await snapshotTables(t, ["connections", "aiKeys", "apiKeys"])).toEqual(snapshot);
  });

  test("legacy data under the only configured key migrates without OLD_MASTER_KEY", async () => {
    const t = newLimitedBackend();
    const secret = `sk-proj-${randomText(40)}`;
    const aiKeyId = await t.run(async (ctx) => {
      const userId = await ctx.db.insert("users", { tokenIdentifier: "legacy|solo", createdAt: 0 });
      return ctx.db.insert("aiKeys", {
        userId,
        provider: "openai",
        encryptedKey: await encryptLegacy(OLD_KEY, userId, secret),
        hint: "sk-…",
        createdAt: 0,
        updatedAt: 0,
      });
    });
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    expect((await jobStatus(t)).counts).toMatchObject({ migrated: 1, failed: 0 });
    const row = await t.run((ctx) => ctx.db.get("aiKeys", aiKeyId));
    expect((await decryptAiKey(oldOnly, row?.userId as Id<"users">, row?.encryptedKey ?? "")).plaintext).toBe(secret);
    expect(row?.hint).toBe("sk-…");
  });
});
