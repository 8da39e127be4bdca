/**
 * The operator mistakes issue 16 found, each caught: a key removed or
 * changed during the job pauses it at the first value it cannot open (no
 * flood of failures); a key nothing was ever under is no SWAPPED_KEYS; an
 * upgrade without the original key is refused before any write; status
 * answers `next` before any job and shows the keys configured now after
 * OLD_MASTER_KEY is removed; a missing root salt is never replaced while
 * data needs it.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { errorOf } from "./helpers/api";
import { identity } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "./helpers/keys";
import { originalAiKey, originalConnection } from "./helpers/original";
import { newLimitedBackend, runAllBatches, runOneBatch, seedEncrypted, snapshotTables, useRotationHarness, type LimitedBackend } from "./helpers/rotation";
import { seedProject } from "./helpers/seed";
import { SECRETS } from "./helpers/secrets";

const OLD_KEY = TEST_MASTER_KEY;
const NEW_KEY = SECOND_MASTER_KEY;

useRotationHarness();

beforeEach(() => {
  vi.useFakeTimers();
  vi.spyOn(console, "info").mockImplementation(() => {});
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

const status = (t: LimitedBackend) => t.action(internal.keyRotation.status, {});

/** Starts a rotation in 5-row batches and runs it until its rewrite has handled some rows. */
async function rotateHalfway(t: LimitedBackend) {
  const { jobId } = await t.mutation(internal.keyRotation.rotate, {});
  await t.run((ctx) => ctx.db.patch("reencryptionJobs", jobId, { budgets: { rows: 5, bytes: 8 * 1024 * 1024, derivations: 8 } }));
  for (let job = await t.run((ctx) => ctx.db.get("reencryptionJobs", jobId)); job && job.counts.scanned === 0; job = await t.run((ctx) => ctx.db.get("reencryptionJobs", jobId))) {
    await runOneBatch(t);
  }
  return jobId;
}

describe("a key removed or changed during the job", () => {
  test.each([
    ["removed", ""],
    ["replaced by another deployment's key", THIRD_MASTER_KEY],
  ])("OLD_MASTER_KEY %s: the job pauses at the first value it cannot open, with the cause and the fix; no failures", async (_how, value) => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 4, connectionsPerProject: 5, users: 2 }, OLD_KEY);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const jobId = await rotateHalfway(t);
    vi.stubEnv("OLD_MASTER_KEY", value);
    await runAllBatches(t);

    const paused = await status(t);
    expect(paused.job).toMatchObject({ _id: jobId, status: "paused", stopReason: { code: "KEY_MISSING", table: "connections" }, counts: { failed: 0 } });
    expect(paused.job?.counts.reEncrypted).toBe(5);
    expect(paused.job?.stopReason?.message).toMatch(/^Paused at connections .*left untouched.*Put the key back in OLD_MASTER_KEY/);
    expect(paused.next).toContain(paused.job?.stopReason?.message);
    expect(paused.safeToRemoveOldKey).toBe(false);
    expect(paused.inventory?.missingKeyIds).toHaveLength(1);
    expect(await t.run((ctx) => ctx.db.query("reencryptionFailures").collect())).toEqual([]);
    expect(warn.mock.calls.filter((call) => String(call[0]).includes("left unchanged"))).toEqual([]);

    // Put back, a new job finishes from where the data is.
    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    const done = await status(t);
    expect(done.job).toMatchObject({ status: "done", counts: { reEncrypted: 17, failed: 0 } });
    expect(done.safeToRemoveOldKey).toBe(true);
  });

  test("a key added to OLD_MASTER_KEY mid-job that never wrote anything changes nothing: the job finishes, no SWAPPED_KEYS", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 3, connectionsPerProject: 4, users: 2 }, OLD_KEY);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    await rotateHalfway(t);
    vi.stubEnv("OLD_MASTER_KEY", `${THIRD_MASTER_KEY},${OLD_KEY}`);
    await runAllBatches(t);
    const after = await status(t);
    expect(after.job).toMatchObject({ status: "done", counts: { reEncrypted: 14, failed: 0 } });
    expect(after.safeToRemoveOldKey).toBe(true);
    expect(JSON.stringify(after)).not.toContain("SWAPPED");
  });
});

describe("checks before any write", () => {
  test("an upgrade without the original key (new key set, OLD_MASTER_KEY empty) stops after its scan, writing nothing", async () => {
    const t = newLimitedBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner" });
    await originalConnection(t, OLD_KEY, projectId, "stripe", { secretKey: SECRETS.stripeKey });
    await originalAiKey(t, OLD_KEY, userIds.alice!, "openai", SECRETS.openaiKey);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    const before = await snapshotTables(t);

    const first = await t.action(internal.upgrade.status, {});
    expect(first.job).toBeNull();
    expect(first.next).toMatch(/rows need re-encrypting or upgrading: run .*keyRotation:rotate/);

    await t.mutation(internal.upgrade.run, {});
    await runAllBatches(t);
    const refused = await t.action(internal.upgrade.status, {});
    expect(refused.job).toMatchObject({ status: "stopped", stopReason: { code: "ORIGINAL_KEY_MISSING" }, counts: { scanned: 0 } });
    expect(refused.next).toMatch(/No configured key opens the values in the original Dashtray's format.*Nothing was written.*OLD_MASTER_KEY/);
    const after = await snapshotTables(t);
    expect({ ...after, auditLog: [] }).toEqual({ ...before, auditLog: [] });

    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    await t.mutation(internal.upgrade.run, {});
    await runAllBatches(t);
    expect((await status(t)).job).toMatchObject({ status: "done", counts: { migrated: 2, failed: 0 } });
  });

  test("once OLD_MASTER_KEY is removed, status shows the keys and data now, not a past scan", async () => {
    const t = newLimitedBackend();
    await seedEncrypted(t, { projects: 2, connectionsPerProject: 2, users: 1 }, OLD_KEY);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
    vi.stubEnv("OLD_MASTER_KEY", OLD_KEY);
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    expect((await status(t)).safeToRemoveOldKey).toBe(true);
    vi.stubEnv("OLD_MASTER_KEY", "");
    const now = await status(t);
    expect(now.keys.previous).toEqual([]);
    expect(now.inventory?.keyIds.map(({ configured }) => configured)).toEqual(["current"]);
    expect(now.inventory?.missingKeyIds).toEqual([]);
    expect(now.safeToRemoveOldKey).toBe(false);
    expect(now.next).toMatch(/^Nothing to do: every value is readable under MASTER_ENCRYPTION_KEY/);
  });
});

describe("the root salt fails closed", () => {
  test("with its row gone while v2 data exists, writes are refused (ROOT_SALT_MISSING) and status says how to restore it", async () => {
    const t = newLimitedBackend();
    vi.stubEnv("MASTER_ENCRYPTION_KEY", OLD_KEY);
    const { projectId } = await seedProject(t, { alice: "admin" });
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } });
    const settings = await t.run(async (ctx) => (await ctx.db.query("encryptionSettings").first())!);
    await t.run((ctx) => ctx.db.delete("encryptionSettings", settings._id));

    const refused = await errorOf(alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } }));
    expect(refused).toMatchObject({ code: "ENCRYPTION_UNAVAILABLE", reason: "ROOT_SALT_MISSING" });
    expect(refused.message).toMatch(/root salt is missing although connections.encryptedCredentials holds format v2.*restore the encryptionSettings row/);
    await expect(t.mutation(internal.keyRotation.rotate, {})).rejects.toThrow(/ROOT_SALT_MISSING/);
    expect(await t.run((ctx) => ctx.db.query("encryptionSettings").collect())).toEqual([]);
    const now = await status(t);
    expect(now.keys.error).toEqual({ code: "ROOT_SALT_MISSING", variable: "encryptionSettings.rootSalt" });
    expect(now.next).toMatch(/^Restore the encryptionSettings row \(rootSalt\) from your latest backup/);

    // Restored, everything works again.
    const { _id, _creationTime, ...row } = settings;
    await t.run((ctx) => ctx.db.insert("encryptionSettings", row));
    await alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } });
    expect((await status(t)).keys.error).toBeUndefined();
  });

  test("a v2 value older than the 64 newest rows still counts: the newer rows' secret versions (tombstones of 64 removed AI keys) are evidence", async () => {
    const t = newLimitedBackend();
    vi.stubEnv("MASTER_ENCRYPTION_KEY", OLD_KEY);
    await t.withIdentity(identity("alice")).mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey });
    const removed = Array.from({ length: 64 }, (_, index) => identity(`removed${index}`));
    for (const user of removed) {
      await t.withIdentity(user).mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey });
      await t.withIdentity(user).mutation(api.aiKeys.remove, {});
    }
    const newest = await t.run((ctx) => ctx.db.query("aiKeys").order("desc").take(64));
    expect(newest.every((row) => row.encryptedKey === undefined && (row.secretVersion ?? 0) > 0)).toBe(true);
    await t.run(async (ctx) => {
      for (const row of await ctx.db.query("encryptionSettings").collect()) await ctx.db.delete("encryptionSettings", row._id);
    });

    const refused = await errorOf(t.withIdentity(identity("bob")).mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey }));
    expect(refused).toMatchObject({ code: "ENCRYPTION_UNAVAILABLE", reason: "ROOT_SALT_MISSING" });
    expect(refused.message).toMatch(/aiKeys.secretVersion is above 0/);
    expect(await t.run((ctx) => ctx.db.query("encryptionSettings").collect())).toEqual([]);
  });
});
