import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { LEGACY_READ } from "./helpers/legacy";
import { internal } from "../convex/_generated/api";
import crons from "../convex/crons";
import type { Doc, Id } from "../convex/_generated/dataModel";
import { MAX_BYTES_PER_BATCH, MAX_DERIVATIONS_PER_BATCH, MAX_PREVIOUS_KEYS, MAX_ROWS_PER_BATCH } from "../convex/keyRotation";
import { describeCiphertext } from "../convex/lib/cipher";
import { sha256Hex } from "../convex/lib/hash";
import { Keyring } from "../convex/lib/keyring";
import { maskSecret } from "../convex/lib/mask";
import { decryptAiKey, decryptCredentials, encryptCredentials, ensureRootSalt } from "../convex/storedSecrets/encryption";
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
  snapshotTables,
  useRotationHarness,
  type LimitedBackend,
  type Seeded,
} from "./helpers/rotation";
import { v1KeyId } from "./helpers/v1";
import { errorOf } from "./helpers/api";

const OLD_KEY = TEST_MASTER_KEY;
const NEW_KEY = SECOND_MASTER_KEY;

// Every backend here is cold (a fresh module graph per batch), and PBKDF2 runs are counted at crypto.subtle.
useRotationHarness();

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Deployment state during a rotation: the new key is current, the old one still decrypts. */
/** A fresh key shaped like `openssl rand -hex 32`. */
function randomHexKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function rotatingEnv() {
  vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
  vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
}

/** A keyring with only `masterKey`, under the backend's root salt (created if it has none). */
async function onlyKey(t: LimitedBackend, masterKey: string): Promise<Keyring> {
  return Keyring.fromSecrets(masterKey, [], await t.run((ctx) => ensureRootSalt(ctx.db)));
}

/** The v2 key id of `masterKey` in this backend. */
async function keyIdOf(t: LimitedBackend, masterKey: string): Promise<string> {
  return (await onlyKey(t, masterKey)).current.keyId();
}

/** The job as status shows it, without status's inventory (cheap: for loops that wait on batches). */
async function jobOnly(t: LimitedBackend) {
  const { job } = await t.query(internal.keyRotation.statusHead, {});
  if (!job) throw new Error("no rotation job");
  return job;
}

async function jobStatus(t: LimitedBackend, jobId?: Id<"reencryptionJobs">) {
  const status = await t.action(internal.keyRotation.status, jobId ? { jobId } : {});
  if (!status.job) throw new Error("no rotation job");
  // safeToRemoveOldKey comes from status's fresh inventory, not from the job.
  return { ...status.job, safeToRemoveOldKey: status.safeToRemoveOldKey };
}

/** Decrypts every seeded row with `masterKey` alone and compares it to the plaintext it was seeded with (v2 under that key). */
async function expectSeededIntact(t: LimitedBackend, seeded: Seeded, masterKey: string) {
  const keyring = await onlyKey(t, masterKey);
  const keyId = await keyring.current.keyId();
  const rows = await t.run(async (ctx) => ({
    connections: await ctx.db.query("connections").collect(),
    aiKeys: await ctx.db.query("aiKeys").collect(),
  }));
  expect(rows.connections).toHaveLength(seeded.credentials.size);
  expect(rows.aiKeys).toHaveLength(seeded.aiKeys.size);
  for (const row of rows.connections) {
    const { credentials, secret } = await decryptCredentials(
      keyring,
      row.projectId,
      row._id,
      row.encryptedCredentials ?? "",
      row.secretVersion,
LEGACY_READ,
    );
    expect(credentials).toEqual(seeded.credentials.get(row._id));
    expect(secret).toMatchObject({ format: "v2", keyId });
  }
  for (const row of rows.aiKeys) {
    const secret = await decryptAiKey(keyring, row.userId, row.encryptedKey ?? "", row.secretVersion, LEGACY_READ);
    expect(secret.plaintext).toBe(seeded.aiKeys.get(row._id));
    expect(secret).toMatchObject({ format: "v2", keyId });
  }
}

/** How many connections and AI keys are stored in format v2 under the key with `keyId`. */
async function countUnderKey(t: LimitedBackend, keyId: string): Promise<number> {
  const values = await t.run(async (ctx) => [
    ...(await ctx.db.query("connections").collect()).map((row) => row.encryptedCredentials),
    ...(await ctx.db.query("aiKeys").collect()).map((row) => row.encryptedKey),
  ]);
  return values.filter((value) => {
    const shape = value === undefined ? null : describeCiphertext(value);
    return shape?.format === "v2" && shape.keyId === keyId;
  }).length;
}

/** Runs the job's batches one at a time, returning each batch's phase and the PBKDF2 runs it performed (at crypto.subtle). */
async function runBatchesCounting(t: LimitedBackend): Promise<{ phase: string; derivations: number }[]> {
  const batches: { phase: string; derivations: number }[] = [];
  for (let job = await jobOnly(t); job.status === "running"; job = await jobOnly(t)) {
    const before = derivationCount();
    await runOneBatch(t);
    batches.push({ phase: job.phase, derivations: derivationCount() - before });
  }
  return batches;
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
      // The 200 users rows are visited too (they could hold the original's AI key): already current.
      expect(status.counts).toEqual({ scanned: 2400, reEncrypted: 2200, migrated: 0, alreadyCurrent: 200, failed: 0 });
      expect(status.scan).toMatchObject({ previousKey: 2200, upToDate: 200, unknownKey: 0 });
      expect(status.verification).toMatchObject({ rows: 2400, upToDate: 2400 });
      expect(status.safeToRemoveOldKey).toBe(true);
      expect(status.maxBatchRows).toBeLessThanOrEqual(MAX_ROWS_PER_BATCH);
      // v2 under one old key: the current root and the old key's root, whatever the number of salts.
      expect(status.maxBatchDerivations).toBe(2);

      vi.stubEnv("OLD_MASTER_KEY", "");
      await expectSeededIntact(t, seeded, NEW_KEY);

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
  test("cold, per batch: scan and verify derive nothing; a rotate batch costs the current root + 1 per old key met", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 30, connectionsPerProject: 7, users: 25 }, OLD_KEY);
    // A legacy row: one PBKDF2 per key tried (current first, then the old key that opens it).
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
    const beforeStart = derivationCount();
    await t.mutation(internal.keyRotation.rotate, {});
    // Starting computes each configured key's v2 and v1 id once: 2 keys x 2.
    expect(derivationCount() - beforeStart).toBe(4);
    // ...and records them, in keyring order, as hints for the decrypting calls made while it runs.
    const started = await jobStatus(t);
    const keyIdOrder = await t.run(async (ctx) => (await ctx.db.query("encryptionSettings").first())?.keyIdOrder);
    expect(keyIdOrder).toEqual(started.keyIds);
    expect(await jobStatus(t)).toMatchObject({
      budgets: { derivations: MAX_DERIVATIONS_PER_BATCH, rows: MAX_ROWS_PER_BATCH, bytes: MAX_BYTES_PER_BATCH },
    });

    const batches = await runBatchesCounting(t);
    const counting = batches.filter(({ phase }) => phase !== "rewrite").map(({ derivations }) => derivations);
    // Scan and verify read headers only; the scan's last batch tries the keys on the first original-format value
    // it met, before any write (current key, then the old key that opens it).
    expect(counting).toEqual([0, 0, 0, 2, 0, 0, 0, 0]);
    const rotateBatches = batches.filter(({ phase }) => phase === "rewrite");
    // connections (210 rows: current root + old root), users (current root), aiKeys (26 rows: + 2 legacy keys), apiKeys (current root).
    expect(rotateBatches.map(({ derivations }) => derivations)).toEqual([2, 1, 4, 1]);

    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.counts).toMatchObject({ reEncrypted: 235, migrated: 1, failed: 0 });
    expect(status.maxBatchDerivations).toBe(4);
    expect(status.maxBatchRows).toBe(210);
    expect(status.batches).toBe(batches.length);
    await expectSeededIntact(t, seeded, NEW_KEY);
  });

  test("v1 values cost one PBKDF2 per salt: the derivation budget cuts rotate batches short", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 12, connectionsPerProject: 2, users: 2 }, OLD_KEY, { format: "v1" });
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, {});
    const batches = await runBatchesCounting(t);
    const rotateConnections = batches.filter(({ phase }) => phase === "rewrite").map(({ derivations }) => derivations);
    // Current root + 7 projects' v1 keys = 8; then the 5 other projects; users: root; aiKeys: root + 2 users; apiKeys: root.
    expect(rotateConnections).toEqual([8, 6, 1, 3, 1]);
    const status = await jobStatus(t);
    expect(status.scan).toMatchObject({ olderFormat: 26, upToDate: 2 });
    expect(status.counts).toMatchObject({ migrated: 26, reEncrypted: 0, failed: 0 });
    expect(status.maxBatchDerivations).toBe(MAX_DERIVATIONS_PER_BATCH);
    expect(status.verification).toMatchObject({ rows: 28, upToDate: 28 });
    await expectSeededIntact(t, seeded, NEW_KEY);
  });

  test("v1 under the current key is not up to date: it is migrated to v2 (keeping the row's version)", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY, { format: "v1" });
    // No rotation: the only key is the one the v1 values were written under.
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    const status = await jobStatus(t);
    // The job computed the key's v1 id once, at its start, and classified every v1 value by header with it.
    expect(status.keyIds.v1[0]).toBe(await v1KeyId(OLD_KEY));
    expect(status.scan).toMatchObject({ rows: 6, olderFormat: 5, unknownKey: 0 });
    expect(status.counts).toMatchObject({ migrated: 5, failed: 0 });
    // OLD_MASTER_KEY is empty: there is nothing to remove.
    expect(status.safeToRemoveOldKey).toBe(false);
    await expectSeededIntact(t, seeded, OLD_KEY);
    const versions = await t.run(async (ctx) =>
      (await ctx.db.query("connections").collect()).map((row) => row.secretVersion ?? "none"),
    );
    expect(versions).toEqual(["none", "none", "none", "none"]);
  });

  test("rows of ~200 KB progress under the real transaction limits: batches stop at the byte budget", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 1, connectionsPerProject: 100, users: 1 }, OLD_KEY);
    const padding = randomText(1024).repeat(200);
    const ids = [...seeded.credentials.keys()];
    for (let i = 0; i < ids.length; i += 10) {
      await t.run(async (ctx) => {
        for (const id of ids.slice(i, i + 10)) await ctx.db.patch("connections", id, { credentialHints: { secretKey: "sk_live_…", note: padding } });
      });
    }
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.resumes).toBe(0);
    expect(status.counts).toMatchObject({ reEncrypted: 101, failed: 0 });
    // 100 rows of 200 KB are 20 MB: more than one transaction may read, so several batches of well under 16 MiB.
    expect(status.maxBatchBytes).toBeLessThanOrEqual(MAX_BYTES_PER_BATCH + 2 * 210 * 1024);
    expect(status.maxBatchRows).toBeLessThan(100);
    expect(status.batches).toBeGreaterThan(6);
    // The padding off again (in small transactions), so the check below can read every row at once.
    for (let i = 0; i < ids.length; i += 10) {
      await t.run(async (ctx) => {
        for (const id of ids.slice(i, i + 10)) await ctx.db.patch("connections", id, { credentialHints: { secretKey: "sk_live_…" } });
      });
    }
    await expectSeededIntact(t, seeded, NEW_KEY);
  });

  test("a batch that throws midway rolls back; rotate halves the budgets, resumes from the cursor and nothing is lost", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 12, connectionsPerProject: 5, users: 10 }, OLD_KEY, { format: "v1" });
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, {});

    // The first rotate batch migrates 35 rows (current root + 7 projects' v1 keys); the 45th
    // encryption is the 10th row of the second batch.
    const encrypt = crypto.subtle.encrypt.bind(crypto.subtle);
    let encryptions = 0;
    const spy = vi.spyOn(crypto.subtle, "encrypt").mockImplementation((...args: Parameters<SubtleCrypto["encrypt"]>) => {
      encryptions++;
      if (encryptions === 45) return Promise.reject(new Error("injected failure"));
      return encrypt(...args);
    });
    vi.spyOn(console, "error").mockImplementation(() => {});
    await runAllBatches(t);
    spy.mockRestore();

    const broken = await jobStatus(t);
    expect(encryptions).toBe(45);
    expect(broken.status).toBe("running");
    expect(broken.batchState).toBe("failed");
    expect(broken.budgets.derivations).toBe(MAX_DERIVATIONS_PER_BATCH);
    expect(broken.counts.migrated).toBe(35);
    // The failed batch's 9 writes were rolled back with it.
    expect(await countUnderKey(t, await keyIdOf(t, NEW_KEY))).toBe(35);

    const resumed = await t.mutation(internal.keyRotation.rotate, {});
    expect(resumed).toEqual({ jobId: broken._id, outcome: "resumed", dryRun: false, plan: expect.stringMatching(/batch failed.*8 -> 4 derivations/) });
    expect(await jobStatus(t)).toMatchObject({
      budgets: { derivations: MAX_DERIVATIONS_PER_BATCH / 2, rows: MAX_ROWS_PER_BATCH / 2, bytes: MAX_BYTES_PER_BATCH / 2 },
    });

    // Every batch after the resume stays within the halved budget, which is what cuts them short.
    const batches = await runBatchesCounting(t);
    expect(Math.max(...batches.map(({ derivations }) => derivations))).toBe(MAX_DERIVATIONS_PER_BATCH / 2);

    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.resumes).toBe(1);
    expect(status.counts).toEqual({ scanned: 80, reEncrypted: 0, migrated: 70, alreadyCurrent: 10, failed: 0 });
    await expectSeededIntact(t, seeded, NEW_KEY);
  });

  test("a batch chain that keeps exceeding the time limit converges: each resume halves the budget until batches fit", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 6, connectionsPerProject: 3, users: 3 }, OLD_KEY, { format: "v1" });
    rotatingEnv();

    // Simulated 1 s limit: a batch dies at its 4th PBKDF2 run, wherever that falls, as Convex
    // kills a mutation that runs too long.
    const TIME_LIMIT_DERIVATIONS = 3;
    let derivationsThisTransaction = 0;
    let enforcing = false;
    const countOrDie = (algorithm: unknown) => {
      if (!enforcing || (algorithm as { name?: string }).name !== "PBKDF2") return;
      derivationsThisTransaction++;
      if (derivationsThisTransaction > TIME_LIMIT_DERIVATIONS) throw new Error("simulated: execution time limit exceeded");
    };
    const deriveKey = crypto.subtle.deriveKey.bind(crypto.subtle);
    const deriveBits = crypto.subtle.deriveBits.bind(crypto.subtle);
    vi.spyOn(crypto.subtle, "deriveKey").mockImplementation(async (...args: Parameters<SubtleCrypto["deriveKey"]>) => {
      countOrDie(args[0]);
      return deriveKey(...args);
    });
    vi.spyOn(crypto.subtle, "deriveBits").mockImplementation(async (...args: Parameters<SubtleCrypto["deriveBits"]>) => {
      countOrDie(args[0]);
      return deriveBits(...args);
    });
    vi.spyOn(console, "error").mockImplementation(() => {});

    const started = await t.mutation(internal.keyRotation.rotate, {});
    const budgetsAfterResumes: number[] = [];
    for (;;) {
      const job = await jobOnly(t);
      if (job.status !== "running") break;
      if (job.batchState === "failed") {
        if (budgetsAfterResumes.length === 5) throw new Error("the job did not converge");
        expect(await t.mutation(internal.keyRotation.rotate, {})).toMatchObject({ jobId: started.jobId, outcome: "resumed" });
        budgetsAfterResumes.push((await jobStatus(t)).budgets.derivations);
        continue;
      }
      derivationsThisTransaction = 0;
      enforcing = true;
      await runOneBatch(t);
      enforcing = false;
    }

    // 8 derivations (root + 7 salts) died, 4 (root + 3) died, 2 (root + 1) fit.
    expect(budgetsAfterResumes).toEqual([4, 2]);
    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.resumes).toBe(2);
    expect(status.maxBatchDerivations).toBeLessThanOrEqual(TIME_LIMIT_DERIVATIONS);
    expect(status.counts).toEqual({ scanned: 24, reEncrypted: 0, migrated: 21, alreadyCurrent: 3, failed: 0 });
    vi.restoreAllMocks();
    await expectSeededIntact(t, seeded, NEW_KEY);
  });

  test("a canceled batch is resumed with half the budgets", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    rotatingEnv();
    const { jobId } = await t.mutation(internal.keyRotation.rotate, {});
    await t.run(async (ctx) => {
      const job = (await ctx.db.get("reencryptionJobs", jobId)) as Doc<"reencryptionJobs">;
      await ctx.scheduler.cancel(job.nextBatchId as Id<"_scheduled_functions">);
    });
    const canceled = await jobStatus(t);
    expect(canceled.batchState).toBe("canceled");
    expect(canceled).toMatchObject({
      budgets: { derivations: MAX_DERIVATIONS_PER_BATCH, rows: MAX_ROWS_PER_BATCH, bytes: MAX_BYTES_PER_BATCH },
    });

    expect(await t.mutation(internal.keyRotation.rotate, {})).toMatchObject({ jobId, outcome: "resumed" });
    expect(await t.run((ctx) => ctx.db.get("reencryptionJobs", jobId))).toMatchObject({
      budgets: { derivations: MAX_DERIVATIONS_PER_BATCH / 2, rows: MAX_ROWS_PER_BATCH / 2, bytes: MAX_BYTES_PER_BATCH / 2 },
    });
    await runAllBatches(t);
    expect((await jobStatus(t)).counts).toMatchObject({ reEncrypted: 5, failed: 0 });
    await expectSeededIntact(t, seeded, NEW_KEY);
  });
});

describe("keyRotation during live traffic", () => {
  test("a row written with the new key between batches is counted already current and kept", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 10, connectionsPerProject: 6, users: 3 }, OLD_KEY);
    rotatingEnv();
    const { jobId } = await t.mutation(internal.keyRotation.rotate, {});
    // Small batches, so the job is still running when the row is written.
    await t.run((ctx) => ctx.db.patch("reencryptionJobs", jobId, { budgets: { rows: 20, bytes: MAX_BYTES_PER_BATCH, derivations: MAX_DERIVATIONS_PER_BATCH } }));
    while ((await jobOnly(t)).counts.scanned === 0) await runOneBatch(t);

    const oldKeyId = await keyIdOf(t, OLD_KEY);
    const pending = await t.run(async (ctx) =>
      (await ctx.db.query("connections").collect()).find((row) => {
        const shape = describeCiphertext(row.encryptedCredentials ?? "");
        return shape.format === "v2" && shape.keyId === oldKeyId;
      }),
    );
    if (!pending) throw new Error("every row was already rotated");
    const updated: Credentials = { secretKey: `sk_live_${randomText(24)}` };
    // As connections.updateCredentials writes it: the new key, the next version.
    const ciphertext = await encryptCredentials(await onlyKey(t, NEW_KEY), pending.projectId, pending._id, updated, 2);
    await t.run((ctx) => ctx.db.patch("connections", pending._id, { encryptedCredentials: ciphertext, secretVersion: 2 }));
    seeded.credentials.set(pending._id, updated);

    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status.counts).toEqual({ scanned: 66, reEncrypted: 62, migrated: 0, alreadyCurrent: 4, failed: 0 });
    const stored = await t.run((ctx) => ctx.db.get("connections", pending._id));
    expect(stored?.encryptedCredentials).toBe(ciphertext);
    await expectSeededIntact(t, seeded, NEW_KEY);
  });

  test("a second rotate joins the running job; one started after it finished writes nothing and status says OLD_MASTER_KEY can go", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 3, connectionsPerProject: 2, users: 2 }, OLD_KEY);
    rotatingEnv();
    const first = await t.mutation(internal.keyRotation.rotate, {});
    const second = await t.mutation(internal.keyRotation.rotate, {});
    expect(second).toEqual({ jobId: first.jobId, outcome: "joined", dryRun: false, plan: expect.stringMatching(/^Joined the running job/) });
    await expect(t.mutation(internal.keyRotation.rotate, { dryRun: true })).rejects.toThrow(/job is running/);
    await runAllBatches(t);

    const jobs = await t.run((ctx) => ctx.db.query("reencryptionJobs").collect());
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.counts.reEncrypted).toBe(8);

    const before = await snapshotTables(t, ["connections", "aiKeys", "apiKeys"]);
    const again = await t.mutation(internal.keyRotation.rotate, {});
    expect(again.outcome).toBe("started");
    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status).toMatchObject({ status: "done", counts: { reEncrypted: 0, migrated: 0, failed: 0 }, safeToRemoveOldKey: true });
    expect(await snapshotTables(t, ["connections", "aiKeys", "apiKeys"])).toEqual(before);
    expect((await t.action(internal.keyRotation.status, {})).next).toMatch(/remove it \(step 4\)/);
  });

  test("a dry run whose batches died does not block the real rotation: it is replaced", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    rotatingEnv();
    const dry = await t.mutation(internal.keyRotation.rotate, { dryRun: true });
    await t.run(async (ctx) => {
      const job = (await ctx.db.get("reencryptionJobs", dry.jobId)) as Doc<"reencryptionJobs">;
      await ctx.scheduler.cancel(job.nextBatchId as Id<"_scheduled_functions">);
    });

    const real = await t.mutation(internal.keyRotation.rotate, {});
    expect(real).toMatchObject({ outcome: "started", dryRun: false });
    expect(real.jobId).not.toBe(dry.jobId);
    const replaced = await jobStatus(t, dry.jobId);
    expect(replaced).toMatchObject({ status: "stopped", stopReason: { code: "REPLACED" } });
    await runAllBatches(t);
    expect((await jobStatus(t)).counts).toMatchObject({ reEncrypted: 5, failed: 0 });
    await expectSeededIntact(t, seeded, NEW_KEY);
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
    expect(await countUnderKey(t, await keyIdOf(t, OLD_KEY))).toBe(5);
  });
});

describe("keyRotation failures and refusals", () => {
  test("more old keys than one mutation can compute ids for are refused before any derivation, with the fix", async () => {
    const t = newLimitedBackend();
    const oldKeys = Array.from({ length: MAX_PREVIOUS_KEYS + 1 }, () => randomHexKey());
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", oldKeys.join(","));
    const before = derivationCount();
    const error = await errorOf(t.mutation(internal.keyRotation.rotate, {}));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toContain(`lists ${MAX_PREVIOUS_KEYS + 1} usable keys`);
    for (const key of oldKeys) expect(error.message).not.toContain(key);
    expect(derivationCount() - before).toBe(0);
    // With one fewer it starts.
    vi.stubEnv("OLD_MASTER_KEY", oldKeys.slice(1).join(","));
    expect((await t.mutation(internal.keyRotation.rotate, {})).outcome).toBe("started");
  });

  test("with allowMissingKeys, rows no configured key decrypts are listed as failures and left byte for byte; the job goes on", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 4, connectionsPerProject: 3, users: 2 }, OLD_KEY);
    const third = await onlyKey(t, THIRD_MASTER_KEY);
    const [unknownId, tamperedId] = [...seeded.credentials.keys()] as [Id<"connections">, Id<"connections">];
    await t.run(async (ctx) => {
      const unknown = (await ctx.db.get("connections", unknownId)) as Doc<"connections">;
      await ctx.db.patch("connections", unknownId, {
        encryptedCredentials: await encryptCredentials(third, unknown.projectId, unknownId, { secretKey: "sk_live_unknownkey0000" }, 1),
      });
      const tampered = (await ctx.db.get("connections", tamperedId)) as Doc<"connections">;
      const value = tampered.encryptedCredentials ?? "";
      const flipped = value.slice(0, -2) + (value.at(-2) === "A" ? "B" : "A") + value.slice(-1);
      await ctx.db.patch("connections", tamperedId, { encryptedCredentials: flipped });
    });
    const before = await t.run(async (ctx) => [await ctx.db.get("connections", unknownId), await ctx.db.get("connections", tamperedId)]);
    rotatingEnv();
    await t.mutation(internal.keyRotation.rotate, { allowMissingKeys: true });
    await runAllBatches(t);

    const status = await jobStatus(t);
    expect(status.status).toBe("done");
    expect(status.counts).toEqual({ scanned: 16, reEncrypted: 12, migrated: 0, alreadyCurrent: 2, failed: 2 });
    expect(status.scan.unknownKey).toBe(1);
    expect(status.verification).toMatchObject({ unknownKey: 1, previousKey: 1 });
    expect(status.safeToRemoveOldKey).toBe(false);
    expect(status.failureSample).toEqual(
      expect.arrayContaining([
        // The key id tells the operator which master key to find.
        { table: "connections", rowId: unknownId, code: "UNKNOWN_KEY_ID", keyId: await third.current.keyId() },
        { table: "connections", rowId: tamperedId, code: "DECRYPTION_FAILED", keyId: await keyIdOf(t, OLD_KEY) },
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

  test("values that only look like the current format (another version, malformed, oversized) are failures, never current", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 2, connectionsPerProject: 3, users: 1 }, OLD_KEY);
    rotatingEnv();
    const [otherVersionId, truncatedId, oversizedId] = [...seeded.credentials.keys()] as Id<"connections">[];
    const newKeyId = await keyIdOf(t, NEW_KEY);
    await t.run(async (ctx) => {
      // All name the current key in their header.
      await ctx.db.patch("connections", otherVersionId!, { encryptedCredentials: `dtenc:v3:${newKeyId}:AAAA:BBBB` });
      await ctx.db.patch("connections", truncatedId!, { encryptedCredentials: `dtenc:v2:${newKeyId}:x` });
      await ctx.db.patch("connections", oversizedId!, { encryptedCredentials: `dtenc:v2:${newKeyId}:${"A".repeat(16)}:${"A".repeat(100_000)}` });
    });
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    const status = await jobStatus(t);
    expect(status.counts).toMatchObject({ failed: 3, reEncrypted: 4 });
    expect(status.failureSample.map((failure) => failure.code).sort()).toEqual([
      "MALFORMED_CIPHERTEXT",
      "UNSUPPORTED_VERSION",
      "VALUE_TOO_LARGE",
    ]);
    // No key opens them (they name the current key): none needs OLD_MASTER_KEY, so it can go.
    expect(status.safeToRemoveOldKey).toBe(true);
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

  test("safeToRemoveOldKey follows the keys configured now (the next rotation configured, not started)", async () => {
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
    // Another key added to OLD_MASTER_KEY after the job ran: no value is under either old key, so both can go.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", `${OLD_KEY},${THIRD_MASTER_KEY}`);
    expect((await jobStatus(t)).safeToRemoveOldKey).toBe(true);
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
    expect(status.counts).toEqual({ scanned: 32, reEncrypted: 25, migrated: 2, alreadyCurrent: 5, failed: 0 });
    expect(status.safeToRemoveOldKey).toBe(false);
  });

  test("refuses to start when OLD_MASTER_KEY contains the current key", async () => {
    const t = newLimitedBackend();
    vi.stubEnv("OLD_MASTER_KEY", `${THIRD_MASTER_KEY},${TEST_MASTER_KEY}`);
    await expect(t.mutation(internal.keyRotation.rotate, {})).rejects.toThrow(/OLD_MASTER_KEY holds the current MASTER_ENCRYPTION_KEY.*Next: step 2/);
    expect(await t.run((ctx) => ctx.db.query("reencryptionJobs").collect())).toEqual([]);
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
    expect(status.stopReason?.code).toBe("UNKNOWN_KEY_IDS");
    expect(status.stopReason?.missingKeyIds).toEqual([await keyIdOf(t, OLD_KEY)]);
    expect(status.scan.unknownKey).toBe(11);
    expect(status.counts.scanned).toBe(0);
    expect(await snapshotTables(t, ["connections", "aiKeys", "apiKeys"])).toEqual(before);
    const audit = await t.run((ctx) => ctx.db.query("auditLog").collect());
    expect(audit.map((entry) => entry.detail).join("\n")).toContain("stopped: UNKNOWN_KEY_IDS");
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
    // The hashed API key lacks keyHashAlgorithm (olderShape); the two users rows hold no secret.
    expect(first.scan).toMatchObject({ olderFormat: 3, originalFormat: 3, plaintext: 3, invalid: 1, olderShape: 1, upToDate: 2 });
    expect(first.counts).toEqual({ scanned: 10, reEncrypted: 0, migrated: 7, alreadyCurrent: 2, failed: 1 });
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
    const newOnly = await onlyKey(t, NEW_KEY);
    const newKeyId = await newOnly.current.keyId();
    const readConnection = async (row: Doc<"connections"> | null) => {
      const { credentials, secret } = await decryptCredentials(
        newOnly,
        ids.projectId,
        row?._id as Id<"connections">,
        row?.encryptedCredentials ?? "",
        row?.secretVersion,
LEGACY_READ,
      );
      expect(secret).toMatchObject({ format: "v2", keyId: newKeyId });
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

    expect((await decryptAiKey(newOnly, ids.userId, rows.plainAiKey?.encryptedKey ?? "", rows.plainAiKey?.secretVersion, LEGACY_READ)).plaintext).toBe(plainAiKey);
    expect(rows.plainAiKey?.apiKey).toBeUndefined();
    expect(rows.plainAiKey?.hint).toBe(maskSecret(plainAiKey));
    expect((await decryptAiKey(newOnly, ids.otherUserId, rows.legacyAiKey?.encryptedKey ?? "", rows.legacyAiKey?.secretVersion, LEGACY_READ)).plaintext).toBe(legacyAiKey);
    expect(rows.plainApiKey?.keyHash).toBe(await sha256Hex(plainApiKey));
    expect(rows.hashedApiKey?.keyHash).toBe(hashedApiKey);
    expect(JSON.stringify(Object.values(rows).filter((row) => row?._id !== ids.conflicting))).not.toContain(plainApiKey);

    // A second run changes nothing: everything is up to date but the conflicting row.
    const snapshot = await snapshotTables(t, ["connections", "aiKeys", "apiKeys"]);
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    expect(await jobStatus(t)).toMatchObject({
      status: "done",
      counts: { reEncrypted: 0, migrated: 0, failed: 1 },
      scan: { rows: 10, upToDate: 9, invalid: 1 },
    });
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
    const oldOnly = await onlyKey(t, OLD_KEY);
    expect((await decryptAiKey(oldOnly, row?.userId as Id<"users">, row?.encryptedKey ?? "", row?.secretVersion, LEGACY_READ)).plaintext).toBe(secret);
    expect(row?.hint).toBe("sk-…");
  });
});

describe("operator mistakes, through the runbook's npx convex run calls", () => {
  test("the safe order: status says when the old key is saved; rotate refuses until a new key is set, then says what it will do", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    const oldId = await keyIdOf(t, OLD_KEY);
    expect((await t.action(internal.keyRotation.status, {})).keys).toMatchObject({
      current: oldId,
      previous: [],
      oldKeySavedOnly: false,
    });

    // Step 1: the current key saved as OLD_MASTER_KEY (it is now in both variables).
    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    const saved = await t.action(internal.keyRotation.status, {});
    expect(saved.keys).toMatchObject({ current: oldId, previous: [], oldKeySavedOnly: true });
    expect(saved.keys.message).toBe("old key saved, ready for a new MASTER_ENCRYPTION_KEY");
    expect(saved.next).toMatch(/^Old key saved, ready for a new MASTER_ENCRYPTION_KEY: step 2/);
    await expect(t.mutation(internal.keyRotation.rotate, {})).rejects.toThrow(/Next: step 2/);
    expect(await t.run((ctx) => ctx.db.query("reencryptionJobs").collect())).toEqual([]);

    // Step 2: the new key.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    const ready = await t.action(internal.keyRotation.status, {});
    expect(ready.keys).toMatchObject({ current: await keyIdOf(t, NEW_KEY), previous: [oldId], oldKeySavedOnly: false, invalidEntries: [] });
    expect(ready.keys.message).toMatch(/^rotating: /); // what step 2 of the runbook checks
    expect(ready.next).toMatch(/step 3 of docs\/key-rotation.md/);
    expect(ready.job).toBeNull();

    // Step 3: a dry run says what it will do, and its scan fills the inventory.
    const dry = await t.mutation(internal.keyRotation.rotate, { dryRun: true });
    expect(dry.plan).toMatch(/^Dry run \(writes nothing\): scan every registered secret/);
    expect(dry.plan).toContain(`OLD_MASTER_KEY's keys (${oldId})`);
    await runAllBatches(t);
    const afterDry = await t.action(internal.keyRotation.status, {});
    expect(afterDry.inventory).toMatchObject({
      keyIds: [{ keyId: oldId, format: "v2", rows: 5, configured: "previous" }],
      missingKeyIds: [],
      needOldKey: 5,
      tally: { originalFormat: 0, plaintext: 0 },
    });
    expect(afterDry.next).toMatch(/^Dry run done/);

    // Step 4.
    const real = await t.mutation(internal.keyRotation.rotate, {});
    expect(real.plan).toMatch(/^scan every registered secret.*re-encrypt values under OLD_MASTER_KEY/);
    await runAllBatches(t);
    const done = await t.action(internal.keyRotation.status, {});
    expect(done.job).toMatchObject({ status: "done", progress: { total: 6, done: 6, percent: 100, etaSeconds: 0 } });
    expect(done.safeToRemoveOldKey).toBe(true);
    expect(done.next).toMatch(/remove it \(step 4\)/);
    // Read now, not remembered from the scan: every value is under the new key.
    expect(done.inventory?.keyIds).toEqual([{ keyId: await keyIdOf(t, NEW_KEY), format: "v2", rows: 5, configured: "current" }]);
  });

  test("without a root salt (nothing in format v2 yet) no key has an id, and status's message still says step 2 is done", async () => {
    const t = newLimitedBackend();
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    const status = await t.action(internal.keyRotation.status, {});
    expect(status.keys).toMatchObject({ current: null, previous: [], oldKeySavedOnly: false });
    expect(status.keys.message).toMatch(/^rotating: .*; nothing is encrypted in format v2 yet/);
  });

  test("swapped variables (MASTER_ENCRYPTION_KEY = old, OLD_MASTER_KEY = new) write nothing; removing the unused key loses nothing", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 3, connectionsPerProject: 2, users: 2 }, OLD_KEY);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", OLD_KEY);
    vi.stubEnv("OLD_MASTER_KEY", NEW_KEY);
    const before = await snapshotTables(t);

    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);

    const status = await t.action(internal.keyRotation.status, {});
    expect(status.job).toMatchObject({ status: "done", counts: { reEncrypted: 0, migrated: 0, failed: 0 } });
    // No value needs the key in OLD_MASTER_KEY: no false alarm, and the message names the possible swap.
    expect(status.safeToRemoveOldKey).toBe(true);
    expect(status.next).toMatch(/check the variables are not swapped/);
    expect(status.inventory?.keyIds).toEqual([{ keyId: await keyIdOf(t, OLD_KEY), format: "v2", rows: 8, configured: "current" }]);
    expect(await t.run((ctx) => ctx.db.query("reencryptionFailures").collect())).toEqual([]);
    const after = await snapshotTables(t);
    expect({ ...after, auditLog: [] }).toEqual({ ...before, auditLog: [] });

    // Swapped back, the rotation runs and ends safe.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    expect(await jobStatus(t)).toMatchObject({ status: "done", safeToRemoveOldKey: true, counts: { reEncrypted: 8 } });
  });

  test("a wrong OLD_MASTER_KEY (another deployment's) stops after the scan naming the missing id: no per-row failures or log lines", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 4, connectionsPerProject: 5, users: 3 }, OLD_KEY);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", THIRD_MASTER_KEY);
    const warn = vi.spyOn(console, "warn");
    const before = await snapshotTables(t, ["connections", "aiKeys", "apiKeys"]);

    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);

    const oldId = await keyIdOf(t, OLD_KEY);
    const status = await t.action(internal.keyRotation.status, {});
    expect(status.job).toMatchObject({
      status: "stopped",
      stopReason: { code: "UNKNOWN_KEY_IDS", missingKeyIds: [oldId] },
      scan: { unknownKey: 23 },
      counts: { scanned: 0, failed: 0 },
    });
    expect(status.job?.stopReason?.message).toMatch(/23 rows are under master key ids no configured key has: .*Nothing was written.*Add the key\(s\) with these ids to OLD_MASTER_KEY/);
    expect(status.inventory).toMatchObject({
      keyIds: [{ keyId: oldId, format: "v2", rows: 23, configured: "missing" }],
      missingKeyIds: [oldId],
    });
    expect(await t.run((ctx) => ctx.db.query("reencryptionFailures").collect())).toEqual([]);
    expect(warn.mock.calls.filter((call) => String(call[0]).includes("left unchanged"))).toEqual([]);
    expect(await snapshotTables(t, ["connections", "aiKeys", "apiKeys"])).toEqual(before);

    // With the right old key added, the inventory shows it configured, and the rotation completes.
    vi.stubEnv("OLD_MASTER_KEY", `${THIRD_MASTER_KEY},${OLD_KEY}`);
    expect((await t.action(internal.keyRotation.status, {})).inventory?.missingKeyIds).toEqual([]);
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    expect(await jobStatus(t)).toMatchObject({ status: "done", counts: { reEncrypted: 23, failed: 0 } });
  });

  test("v1 ids in the data are listed with their rows; an unusable OLD_MASTER_KEY entry is named in the refusal", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 2, connectionsPerProject: 1, users: 1 }, OLD_KEY, { format: "v1" });
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", "tooshort");
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    const status = await t.action(internal.keyRotation.status, {});
    const v1Id = await v1KeyId(OLD_KEY);
    expect(status.inventory?.keyIds).toEqual([{ keyId: v1Id, format: "v1", rows: 3, configured: "missing" }]);
    expect(status.job?.stopReason?.message).toContain("OLD_MASTER_KEY (entry 1) is unusable and may be one of them");
    expect(status.keys.invalidEntries).toEqual([{ variable: "OLD_MASTER_KEY", entry: 1, code: "MASTER_KEY_TOO_SHORT" }]);
    expect(status.keys.message).toContain("OLD_MASTER_KEY (entry 1) is unusable (MASTER_KEY_TOO_SHORT)");
  });

  test("allowMissingKeys: unknown-key rows become failures, with a bounded number of log lines per batch", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 5, connectionsPerProject: 4, users: 2 }, THIRD_MASTER_KEY);
    rotatingEnv();
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    await t.mutation(internal.keyRotation.rotate, { allowMissingKeys: true });
    await runAllBatches(t);
    expect(await jobStatus(t)).toMatchObject({ status: "done", counts: { failed: 22 }, safeToRemoveOldKey: false });
    const lines = warn.mock.calls.map((call) => String(call[0])).filter((line) => line.startsWith("reencryption"));
    // connections (20 failures) and aiKeys (2): 5 lines + a summary, then 2 lines.
    expect(lines.filter((line) => line.includes("left unchanged:"))).toHaveLength(7);
    expect(lines.filter((line) => line.includes("15 more rows left unchanged in this batch"))).toHaveLength(1);
  });

  test("progress: total from the scan, rows done, percent, rows per second and ETA", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 4, connectionsPerProject: 10, users: 2 }, OLD_KEY);
    rotatingEnv();
    const { jobId } = await t.mutation(internal.keyRotation.rotate, {});
    await t.run((ctx) => ctx.db.patch("reencryptionJobs", jobId, { budgets: { rows: 10, bytes: MAX_BYTES_PER_BATCH, derivations: MAX_DERIVATIONS_PER_BATCH } }));
    const scanning = await jobStatus(t);
    expect(scanning.progress).toEqual({ phase: "scan", total: null, done: 0, percent: null, rowsPerSecond: null, etaSeconds: null });

    // The scan: 44 rows in 10-row batches (connections), then users, aiKeys and apiKeys.
    for (let job = await jobOnly(t); job.phase === "scan"; job = await jobOnly(t)) await runOneBatch(t);
    vi.setSystemTime(Date.now() + 1_000);
    await runOneBatch(t);
    vi.setSystemTime(Date.now() + 1_000);
    await runOneBatch(t);
    const rotating = await jobStatus(t);
    // 20 rows in 2 s since the phase began.
    expect(rotating.progress).toEqual({ phase: "rewrite", total: 44, done: 20, percent: 45, rowsPerSecond: 10, etaSeconds: 3 });
  });
});

describe("no dead chains: the cron resumes a job whose batch chain died", () => {
  test("a canceled batch is resumed by the cron with halved budgets; status says so", async () => {
    const t = newLimitedBackend();
    const seeded = await seedEncrypted(t, { projects: 3, connectionsPerProject: 2, users: 2 }, OLD_KEY);
    rotatingEnv();
    const { jobId } = await t.mutation(internal.keyRotation.rotate, {});
    // Nothing to do while the chain is alive.
    await t.mutation(internal.keyRotation.resumeStalled, {});
    expect(await jobStatus(t)).toMatchObject({ resumes: 0, autoResumes: 0, batchState: "pending" });

    await t.run(async (ctx) => {
      const job = (await ctx.db.get("reencryptionJobs", jobId)) as Doc<"reencryptionJobs">;
      await ctx.scheduler.cancel(job.nextBatchId as Id<"_scheduled_functions">);
    });
    const dead = await t.action(internal.keyRotation.status, {});
    expect(dead.job?.batchState).toBe("canceled");
    expect(dead.next).toMatch(/the cron resumes it within 5 minutes/);

    vi.spyOn(console, "info").mockImplementation(() => {});
    await t.mutation(internal.keyRotation.resumeStalled, {});
    const resumed = await jobStatus(t);
    expect(resumed).toMatchObject({
      resumes: 1,
      autoResumes: 1,
      lastAutoResumeAt: Date.now(),
      batchState: "pending",
      budgets: { derivations: MAX_DERIVATIONS_PER_BATCH / 2, rows: MAX_ROWS_PER_BATCH / 2, bytes: expect.any(Number) },
    });
    await runAllBatches(t);
    expect(await jobStatus(t)).toMatchObject({ status: "done", safeToRemoveOldKey: true, counts: { reEncrypted: 8 } });
    await expectSeededIntact(t, seeded, NEW_KEY);
  });

  test("it gives up (logging once) when the chain dies again without progress at the smallest budgets; no job: nothing happens", async () => {
    const t = newLimitedBackend();
    await t.mutation(internal.keyRotation.resumeStalled, {});
    expect(await t.run((ctx) => ctx.db.query("reencryptionJobs").collect())).toEqual([]);

    await seedEncrypted(t, { projects: 1, connectionsPerProject: 1, users: 1 }, OLD_KEY);
    rotatingEnv();
    const { jobId } = await t.mutation(internal.keyRotation.rotate, {});
    const cancel = () =>
      t.run(async (ctx) => {
        const job = (await ctx.db.get("reencryptionJobs", jobId)) as Doc<"reencryptionJobs">;
        await ctx.scheduler.cancel(job.nextBatchId as Id<"_scheduled_functions">);
      });
    await t.run((ctx) => ctx.db.patch("reencryptionJobs", jobId, { budgets: { derivations: 2, rows: 2, bytes: 256 * 1024 } }));
    vi.spyOn(console, "info").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    await cancel();
    await t.mutation(internal.keyRotation.resumeStalled, {}); // halves to the minimum
    await cancel();
    await t.mutation(internal.keyRotation.resumeStalled, {}); // no batch since: gives up
    await t.mutation(internal.keyRotation.resumeStalled, {});
    const status = await jobStatus(t);
    expect(status).toMatchObject({ autoResumes: 1, budgets: { rows: 1, derivations: 1, bytes: 256 * 1024 }, batchState: "canceled" });
    expect(status.autoResumeGaveUpAt).toBeDefined();
    expect(error.mock.calls.filter((call) => String(call[0]).includes("not resuming automatically"))).toHaveLength(1);

    // A human's rotate resumes it and clears the give-up.
    expect((await t.mutation(internal.keyRotation.rotate, {})).outcome).toBe("resumed");
    await runAllBatches(t);
    expect(await jobStatus(t)).toMatchObject({ status: "done", counts: { reEncrypted: 2 } });
  });

  test("the cron is registered every 5 minutes", () => {
    const entry = Object.values(crons.crons).find((cron) => cron.name === "keyRotation:resumeStalled");
    expect(entry?.schedule).toEqual({ type: "interval", minutes: 5 });
  });
});
