/**
 * Upgrading a deployment that holds the original Dashtray's data: documents
 * exactly as the original wrote them (helpers/original.ts, made with an
 * independent implementation of its format) under the original master key,
 * which becomes OLD_MASTER_KEY while a new MASTER_ENCRYPTION_KEY is set.
 * Every read path works on them unmigrated; after upgrade:run and removing
 * OLD_MASTER_KEY everything works with the new key alone, and no stored
 * field holds a secret or legacy ciphertext.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import schema from "../convex/schema";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { describeCiphertext } from "../convex/lib/cipher";
import { Keyring } from "../convex/lib/keyring";
import { maskSecret } from "../convex/lib/mask";
import { decryptAiKey, readEncryptionSettings } from "../convex/storedSecrets/encryption";
import { errorOf } from "./helpers/api";
import { identity, type Backend } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "./helpers/keys";
import { LEGACY_READ } from "./helpers/legacy";
import { encryptLegacy } from "./independent/dashtrayFormats";
import { originalAiKey, originalApiKey, originalConnection } from "./helpers/original";
import { newLimitedBackend, runAllBatches } from "./helpers/rotation";
import { seedProject } from "./helpers/seed";
import { SECRETS, SECRET_VALUES, useFakeProviders } from "./helpers/secrets";

const fake = useFakeProviders();

/** The original deployment's master key, kept as OLD_MASTER_KEY during the upgrade. */
const ORIGINAL_KEY = TEST_MASTER_KEY;
const NEW_KEY = SECOND_MASTER_KEY;
const METRICS_PATH = "/api/v1/projects/metrics";

beforeEach(() => {
  vi.stubEnv("MASTER_ENCRYPTION_KEY", NEW_KEY);
  vi.stubEnv("OLD_MASTER_KEY", ORIGINAL_KEY);
});

afterEach(() => {
  vi.useRealTimers();
});

/** A project (alice owner) holding one of each document kind as the original wrote them. */
async function originalDeployment(t: Backend) {
  const { projectId, userIds } = await seedProject(t, { alice: "owner" });
  const aliceId = userIds.alice!;
  const stripe = await originalConnection(t, ORIGINAL_KEY, projectId, "stripe", { secretKey: SECRETS.stripeKey });
  const aiApiKey = await originalAiKey(t, ORIGINAL_KEY, aliceId, "openai", SECRETS.openaiKey);
  const apiKey = await originalApiKey(t, projectId, aliceId, "CI");
  return { projectId, aliceId, stripe, aiApiKey, apiKey, alice: t.withIdentity(identity("alice")) };
}

function fetchMetrics(t: Backend, apiKey: string) {
  return t.fetch(METRICS_PATH, { method: "GET", headers: { Authorization: `Bearer ${apiKey}` } });
}

async function runUpgrade(t: Backend) {
  vi.useFakeTimers();
  await t.mutation(internal.upgrade.run, {});
  await runAllBatches(t);
  vi.useRealTimers();
  const status = await t.action(internal.upgrade.status, {});
  if (!status.job || !status.inventory) throw new Error("no upgrade job");
  // What the original left, counted now over every registered field (the job's own verification agrees).
  const { olderFormat, plaintext, olderShape } = status.inventory.tally;
  const legacyRetired = (await t.run((ctx) => readEncryptionSettings(ctx.db))).legacyRetired;
  return { ...status.job, left: olderFormat + plaintext + olderShape, legacyRetired, safeToRemoveOldKey: status.safeToRemoveOldKey };
}

/** Every string stored anywhere in the deployment, with where it is. */
async function everyStoredString(t: Backend): Promise<{ where: string; value: string }[]> {
  const found: { where: string; value: string }[] = [];
  const walk = (where: string, value: unknown) => {
    if (typeof value === "string") found.push({ where, value });
    else if (value && typeof value === "object") for (const [key, inner] of Object.entries(value)) walk(`${where}.${key}`, inner);
  };
  await t.run(async (ctx) => {
    // Every table the schema has (a table added later is scanned too), and what scheduled calls carry.
    for (const table of Object.keys(schema.tables) as (keyof typeof schema.tables)[]) {
      for (const doc of await ctx.db.query(table).collect()) walk(table, doc);
    }
    for (const scheduled of await ctx.db.system.query("_scheduled_functions").collect()) walk("_scheduled_functions", scheduled);
  });
  return found;
}

async function auditDetails(t: Backend, action: string) {
  const entries = await t.run((ctx) => ctx.db.query("auditLog").collect());
  return entries.filter((entry) => entry.action === action);
}

describe("documents exactly as the original wrote them", () => {
  test("are accepted by the schema and every read path works on them before any migration", async () => {
    const t = newLimitedBackend();
    const { projectId, aliceId, stripe, apiKey, alice } = await originalDeployment(t);

    // The dashboard: the integration's name and unknown hints (they need the plaintext), the original key prefix.
    const [listed] = await alice.query(api.connections.list, { projectId });
    expect(listed).toMatchObject({ connectionId: stripe.connectionId, name: "Stripe", credentialHints: { secretKey: "…" } });
    expect(await alice.query(api.connections.get, { connectionId: stripe.connectionId })).toEqual(listed);
    expect(await alice.query(api.aiKeys.get, {})).toMatchObject({ provider: "openai", hint: "…" });
    const [listedKey] = await alice.query(api.apiKeys.list, { projectId });
    expect(listedKey).toMatchObject({ name: "CI", prefix: "pp_live_" });

    // A sync sends the decrypted key (under OLD_MASTER_KEY, in the original format) to Stripe; audited as legacy.
    expect(await alice.action(api.connections.syncMetrics, { connectionId: stripe.connectionId })).toMatchObject({ status: "active" });
    expect(fake().requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.stripeKey}`);
    const [syncRead] = await auditDetails(t, "connection.credentials_decrypted");
    expect(syncRead?.detail).toContain("legacy format");

    // An insight uses the AI key the original kept on the users row.
    await alice.action(api.ai.generateInsight, { projectId });
    expect(fake().requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.openaiKey}`);
    const [insightRead] = await auditDetails(t, "aiKey.decrypted");
    expect(insightRead).toMatchObject({ targetTable: "users", targetId: aliceId, ownerId: aliceId });
    expect(insightRead?.detail).toContain("legacy format");

    // The HTTP API accepts the key the original issued.
    expect((await fetchMetrics(t, apiKey.apiKey)).status).toBe(200);
  });

  test("upgrade:run migrates each kind; with OLD_MASTER_KEY removed everything works with the new key alone", async () => {
    const t = newLimitedBackend();
    const { projectId, aliceId, stripe, apiKey, alice } = await originalDeployment(t);
    // A GitHub connection too: its repository hint is public, its token masked.
    const github = await originalConnection(t, ORIGINAL_KEY, projectId, "github", {
      token: SECRETS.githubToken,
      repository: SECRETS.githubRepository,
    });

    const status = await runUpgrade(t);
    expect(status).toMatchObject({
      status: "done",
      // Two connections, the users row (its key moved to a new aiKeys row, already current) and the API key.
      counts: { failed: 0, migrated: 4 },
      left: 0,
      safeToRemoveOldKey: true,
      legacyRetired: true,
      legacyRetiredAt: expect.any(Number),
    });
    expect(status.maxBatchDerivations).toBeLessThanOrEqual(8);

    const newKeyId = await Keyring.fromSecrets(NEW_KEY, [], (await t.run((ctx) => readEncryptionSettings(ctx.db))).rootSalt).current.keyId();
    const rows = await t.run(async (ctx) => ({
      stripe: await ctx.db.get("connections", stripe.connectionId),
      github: await ctx.db.get("connections", github.connectionId),
      alice: await ctx.db.get("users", aliceId),
      aiKeys: await ctx.db.query("aiKeys").collect(),
      apiKey: await ctx.db.get("apiKeys", apiKey.apiKeyId),
    }));
    expect(rows.stripe).toMatchObject({ name: "Stripe", credentialHints: { secretKey: maskSecret(SECRETS.stripeKey) } });
    expect(rows.github).toMatchObject({
      name: "GitHub",
      credentialHints: { token: maskSecret(SECRETS.githubToken), repository: SECRETS.githubRepository },
    });
    for (const row of [rows.stripe, rows.github]) {
      expect(describeCiphertext(row?.encryptedCredentials ?? "")).toEqual({ format: "v2", keyId: newKeyId });
    }
    expect(rows.alice?.aiApiKey).toBeUndefined();
    expect(rows.alice?.aiProvider).toBeUndefined();
    expect(rows.aiKeys).toHaveLength(1);
    expect(rows.aiKeys[0]).toMatchObject({ userId: aliceId, provider: "openai", secretVersion: 1, hint: maskSecret(SECRETS.openaiKey) });
    expect(rows.apiKey).toMatchObject({ prefix: "pp_live_", keyHashAlgorithm: "sha256" });
    expect(rows.apiKey?.keyPrefix).toBeUndefined();

    // The original key goes: everything works with the new key alone.
    vi.stubEnv("OLD_MASTER_KEY", "");
    const [listed] = await alice.query(api.connections.list, { projectId });
    expect(listed?.credentialHints).toEqual({ secretKey: maskSecret(SECRETS.stripeKey) });
    expect(await alice.query(api.aiKeys.get, {})).toMatchObject({ provider: "openai", hint: maskSecret(SECRETS.openaiKey) });
    expect(await alice.action(api.connections.syncMetrics, { connectionId: stripe.connectionId })).toMatchObject({ status: "active" });
    expect(fake().requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.stripeKey}`);
    await alice.action(api.ai.generateInsight, { projectId });
    expect(fake().requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.openaiKey}`);
    expect((await fetchMetrics(t, apiKey.apiKey)).status).toBe(200);
    const reads = [...(await auditDetails(t, "connection.credentials_decrypted")), ...(await auditDetails(t, "aiKey.decrypted"))];
    expect(reads.map((entry) => entry.detail ?? "").filter((detail) => detail.includes("legacy"))).toEqual([]);

    // No stored field holds a secret, a key, or a value in the original format.
    const legacyValues = [stripe.encryptedCredentials, github.encryptedCredentials];
    for (const { where, value } of await everyStoredString(t)) {
      for (const secret of [...SECRET_VALUES, apiKey.apiKey, ORIGINAL_KEY, NEW_KEY]) expect(value, where).not.toContain(secret);
      expect(legacyValues, where).not.toContain(value);
      if (/\.(encryptedCredentials|encryptedKey|aiApiKey)$/.test(where)) expect(describeCiphertext(value).format, where).toBe("v2");
    }

    // A second run finds nothing to do.
    const again = await runUpgrade(t);
    expect(again).toMatchObject({ status: "done", counts: { migrated: 0, failed: 0 }, left: 0 });
  });
});

describe("the legacy downgrade", () => {
  test("before retirement a legacy value copied into another row decrypts, audited as legacy; after it every path refuses it", async () => {
    const t = newLimitedBackend();
    const { projectId, aliceId, stripe, alice } = await originalDeployment(t);
    const other = await originalConnection(t, ORIGINAL_KEY, projectId, "stripe", { secretKey: SECRETS.stripeKey });
    // The weakness being closed: the original format binds nothing to its row.
    await t.run((ctx) => ctx.db.patch("connections", other.connectionId, { encryptedCredentials: stripe.encryptedCredentials }));
    expect(await alice.action(api.connections.syncMetrics, { connectionId: other.connectionId })).toMatchObject({ status: "active" });
    expect((await auditDetails(t, "connection.credentials_decrypted")).at(-1)?.detail).toContain("legacy format");

    expect(await runUpgrade(t)).toMatchObject({ status: "done", legacyRetired: true });
    vi.stubEnv("OLD_MASTER_KEY", "");

    // A legacy value (valid under the current key and this project's salt) copied in afterwards is refused.
    const copied = encryptLegacy(NEW_KEY, projectId, JSON.stringify({ secretKey: SECRETS.stripeKey }));
    await t.run((ctx) => ctx.db.patch("connections", other.connectionId, { encryptedCredentials: copied }));
    const syncError = await errorOf(alice.action(api.connections.syncMetrics, { connectionId: other.connectionId }));
    expect(syncError).toMatchObject({ code: "DECRYPTION_FAILED", message: expect.stringContaining("LEGACY_FORMAT_RETIRED") });

    const legacyAiKey = encryptLegacy(NEW_KEY, aliceId, SECRETS.openaiKey);
    const aiKeyId = await t.run(async (ctx) => {
      const row = await ctx.db.query("aiKeys").withIndex("by_userId", (q) => q.eq("userId", aliceId)).unique();
      await ctx.db.patch("aiKeys", row!._id, { encryptedKey: legacyAiKey });
      return row!._id;
    });
    const insightError = await errorOf(alice.action(api.ai.generateInsight, { projectId }));
    expect(insightError).toMatchObject({ code: "DECRYPTION_FAILED", message: expect.stringContaining("LEGACY_FORMAT_RETIRED") });

    // The rotation job does not re-bind it to the row either: it is a failure, left untouched.
    vi.useFakeTimers();
    await t.mutation(internal.keyRotation.rotate, {});
    await runAllBatches(t);
    vi.useRealTimers();
    const rotation = await t.action(internal.keyRotation.status, {});
    expect(rotation?.job?.failureSample).toEqual(
      expect.arrayContaining([
        { table: "connections", rowId: other.connectionId, code: "LEGACY_FORMAT_RETIRED" },
        { table: "aiKeys", rowId: aiKeyId, code: "LEGACY_FORMAT_RETIRED" },
      ]),
    );
    expect((await t.run((ctx) => ctx.db.get("connections", other.connectionId)))?.encryptedCredentials).toBe(copied);
  });
});

describe("upgrade failures", () => {
  test("a row no configured key opens is listed and left byte for byte; the format is not retired", async () => {
    const t = newLimitedBackend();
    const { projectId } = await seedProject(t, { alice: "owner" });
    const good = await originalConnection(t, ORIGINAL_KEY, projectId, "stripe", { secretKey: SECRETS.stripeKey });
    // Written under a master key this deployment does not have.
    const lost = await originalConnection(t, THIRD_MASTER_KEY, projectId, "stripe", { secretKey: SECRETS.stripeKey });
    const before = await t.run((ctx) => ctx.db.get("connections", lost.connectionId));

    const status = await runUpgrade(t);
    expect(status).toMatchObject({
      status: "done",
      counts: { migrated: 1, failed: 1 },
      failureSample: [{ table: "connections", rowId: lost.connectionId, code: "DECRYPTION_FAILED" }],
      verification: { olderFormat: 1, originalFormat: 1 },
      left: 1,
      safeToRemoveOldKey: false,
      legacyRetired: false,
    });
    expect(await t.run((ctx) => ctx.db.get("connections", lost.connectionId))).toEqual(before);
    const failures = await t.query(internal.keyRotation.failures, { jobId: status._id, paginationOpts: { numItems: 10, cursor: null } });
    expect(failures.page.map(({ rowId, code }) => ({ rowId, code }))).toEqual([{ rowId: lost.connectionId, code: "DECRYPTION_FAILED" }]);
    expect((await t.run((ctx) => ctx.db.get("connections", good.connectionId)))?.name).toBe("Stripe");
  });

  test("an AI key set with the current code and one left on the users row conflict: listed, neither dropped", async () => {
    const t = newLimitedBackend();
    const { aliceId, alice, aiApiKey } = await originalDeployment(t);
    // Written straight to the row: aiKeys.set would have removed the original's copy.
    await alice.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: SECRETS.anthropicKey });
    await t.run((ctx) => ctx.db.patch("users", aliceId, { aiApiKey, aiProvider: "openai" }));

    const status = await runUpgrade(t);
    expect(status.failureSample).toEqual([{ table: "users", rowId: aliceId, code: "CONFLICTING_FIELDS" }]);
    expect(status).toMatchObject({ verification: { originalFormat: 1 }, left: 1, legacyRetired: false, safeToRemoveOldKey: false });
    expect((await t.run((ctx) => ctx.db.get("users", aliceId)))?.aiApiKey).toBe(aiApiKey);
  });

  test("a plaintext API key (no keyHashAlgorithm, not a hash) is hashed and keeps working", async () => {
    const t = newLimitedBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner" });
    const plainKey = "dt_live_PlaintextKeyFromAnOlderVersion00000000000";
    const apiKeyId = await t.run((ctx) =>
      ctx.db.insert("apiKeys", { projectId, name: "old", keyHash: plainKey, createdBy: userIds.alice, createdAt: Date.now() }),
    );
    expect(await runUpgrade(t)).toMatchObject({ status: "done", counts: { failed: 0 }, left: 0 });
    const row = await t.run((ctx) => ctx.db.get("apiKeys", apiKeyId));
    expect(row).toMatchObject({ prefix: "dt_live_Plai", keyHashAlgorithm: "sha256" });
    expect(row?.keyHash).not.toContain(plainKey);
    expect((await fetchMetrics(t, plainKey)).status).toBe(200);
  });
});

describe("AI key versions never restart for a user", () => {
  async function decryptRestored(t: Backend, userId: Id<"users">, restored: string) {
    return t.run(async (ctx) => {
      const row = await ctx.db.query("aiKeys").withIndex("by_userId", (q) => q.eq("userId", userId)).unique();
      await ctx.db.patch("aiKeys", row!._id, { encryptedKey: restored });
      const { rootSalt } = await readEncryptionSettings(ctx.db);
      return decryptAiKey(Keyring.fromSecrets(NEW_KEY, [], rootSalt), userId, restored, row!.secretVersion, LEGACY_READ);
    });
  }

  test("after remove and set, a ciphertext of the removed key restored into the row does not decrypt", async () => {
    const t = newLimitedBackend();
    const { userIds } = await seedProject(t, { alice: "owner" });
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey });
    const removed = await t.run(async (ctx) => (await ctx.db.query("aiKeys").first())!.encryptedKey!);
    await alice.mutation(api.aiKeys.remove, {});
    await alice.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: SECRETS.anthropicKey });
    expect((await t.run((ctx) => ctx.db.query("aiKeys").collect())).map((row) => row.secretVersion)).toEqual([2]);
    expect(await errorOf(decryptRestored(t, userIds.alice!, removed))).toMatchObject({ code: "DECRYPTION_FAILED" });
  });

  test("the move from users.aiApiKey continues after a removed key's version", async () => {
    const t = newLimitedBackend();
    const { aliceId, alice, aiApiKey } = await originalDeployment(t);
    await alice.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: SECRETS.anthropicKey });
    await alice.mutation(api.aiKeys.remove, {});
    expect((await t.run((ctx) => ctx.db.get("users", aliceId)))?.aiApiKey).toBeUndefined();
    // Restored from a backup of the original's users row.
    await t.run((ctx) => ctx.db.patch("users", aliceId, { aiApiKey, aiProvider: "openai" }));
    expect(await runUpgrade(t)).toMatchObject({ counts: { failed: 0 }, left: 0 });
    const [row] = await t.run((ctx) => ctx.db.query("aiKeys").collect());
    expect(row).toMatchObject({ provider: "openai", secretVersion: 2, hint: maskSecret(SECRETS.openaiKey) });
    expect(row?.removedAt).toBeUndefined();
  });
});
