/**
 * Every order of the operator's commands, from a deployment of the original
 * Dashtray (legacy connections, users.aiApiKey, hashed and unhashed API
 * keys) that an intermediate version also wrote to (v1 values, plaintext
 * credentials), through the same internal functions the runbook's
 * `npx convex run` lines call:
 * - upgrade: upgrade:run, to the end of the job;
 * - rotate: keyRotation:rotate, to the end of the job;
 * - newKey: runbook steps 1-2 (the current key saved first in OLD_MASTER_KEY, then a fresh MASTER_ENCRYPTION_KEY);
 * - removeOld: runbook step 4, checked as the runbook checks it: only when status says safeToRemoveOldKey;
 * - changeOld: an OLD_MASTER_KEY entry changed during the next job (after its first rewrite batch), or now if no
 *   job follows: the newest entry replaced by a wrong key, or (second variant) an unused key added.
 * Each run must end with every secret readable under the keys configured at its end, or stop at a refusal
 * that wrote nothing under a key that is gone (everything still readable with the keys ever configured, and
 * status's `next` naming the missing key); safeToRemoveOldKey is never true while any value needs an old key.
 */
import { afterAll, afterEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { sha256Hex } from "../convex/lib/hash";
import { Keyring } from "../convex/lib/keyring";
import { decryptAiKey, decryptCredentials, readEncryptionSettings } from "../convex/storedSecrets/encryption";
import { newBackend, type Backend } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "./helpers/keys";
import { encryptLegacy, LEGACY_READ } from "./helpers/legacy";
import { encryptV1 } from "./helpers/v1";
import { originalAiKey, originalApiKey, originalConnection } from "./helpers/original";
import { useMemoisedPbkdf2 } from "./helpers/pbkdf2Memo";
import { unregisteredSecretFields } from "./helpers/registryCheck";

// 120 orders x ~80 PBKDF2 runs: memoised (same inputs, same bits), so this file is about keys, not time.
useMemoisedPbkdf2();

type Step = "upgrade" | "rotate" | "newKey" | "removeOld" | "changeOld";
const STEPS: readonly Step[] = ["upgrade", "rotate", "newKey", "removeOld", "changeOld"];

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));
}

const ORIGINAL_KEY = TEST_MASTER_KEY;
const FRESH_KEYS = [SECOND_MASTER_KEY, THIRD_MASTER_KEY];
/** A key that never wrote anything here (another deployment's). */
const WRONG_KEY = "f".repeat(16) + "0123456789abcdef0123456789abcdef0123456789abcdef";

interface Deployment {
  t: Backend;
  projectId: Id<"projects">;
  connections: Map<Id<"connections">, Record<string, string>>;
  aiKeys: Map<Id<"users">, string>;
  apiKeys: Map<Id<"apiKeys">, string>;
}

async function originalEra(): Promise<Deployment> {
  const t = newBackend();
  const now = Date.now();
  const { alice, bob, carol, projectId } = await t.run(async (ctx) => {
    const [alice, bob, carol] = [
      await ctx.db.insert("users", { tokenIdentifier: "o|alice", createdAt: now }),
      await ctx.db.insert("users", { tokenIdentifier: "o|bob", createdAt: now }),
      await ctx.db.insert("users", { tokenIdentifier: "o|carol", createdAt: now }),
    ];
    return { alice, bob, carol, projectId: await ctx.db.insert("projects", { name: "P", createdBy: alice, createdAt: now }) };
  });
  const d: Deployment = { t, projectId, connections: new Map(), aiKeys: new Map(), apiKeys: new Map() };
  const stripe = { secretKey: "sk_live_original000000000000" };
  d.connections.set((await originalConnection(t, ORIGINAL_KEY, projectId, "stripe", stripe)).connectionId, stripe);
  const github = { token: "ghp_intermediatev1000000000000000000000" };
  const plain = { apiKey: "plausible_plaintext00000000000000", siteId: "example.com" };
  await t.run(async (ctx) => {
    const base = { projectId, status: "active" as const, healthScore: 100, createdAt: now, updatedAt: now };
    const v1Id = await ctx.db.insert("connections", { ...base, service: "github", name: "GitHub", credentialHints: { token: "ghp_…" } });
    await ctx.db.patch("connections", v1Id, { encryptedCredentials: await encryptV1(ORIGINAL_KEY, projectId, `connections/${v1Id}/credentials`, JSON.stringify(github)) });
    d.connections.set(v1Id, github);
    d.connections.set(await ctx.db.insert("connections", { ...base, service: "plausible", name: "Plausible", credentials: plain }), plain);
    const bobKey = "sk-ant-intermediatev100000000000000";
    await ctx.db.insert("aiKeys", { userId: bob, provider: "anthropic", encryptedKey: await encryptV1(ORIGINAL_KEY, bob, `aiKeys/${bob}/apiKey`, bobKey), hint: "sk-…", createdAt: now, updatedAt: now });
    d.aiKeys.set(bob, bobKey);
    const carolKey = "sk-proj-legacyrow0000000000000000000";
    await ctx.db.insert("aiKeys", { userId: carol, provider: "openai", encryptedKey: await encryptLegacy(ORIGINAL_KEY, carol, carolKey), hint: "", createdAt: now, updatedAt: now });
    d.aiKeys.set(carol, carolKey);
    const unhashed = "dt_live_UnhashedFromAnOlderVersion0000000000000";
    d.apiKeys.set(await ctx.db.insert("apiKeys", { projectId, name: "old", keyHash: unhashed, createdAt: now }), unhashed);
  });
  await originalAiKey(t, ORIGINAL_KEY, alice, "openai", "sk-proj-originalusersrow00000000000000");
  d.aiKeys.set(alice, "sk-proj-originalusersrow00000000000000");
  const hashed = await originalApiKey(t, projectId, alice, "CI");
  d.apiKeys.set(hashed.apiKeyId, hashed.apiKey);
  return d;
}

function env(): { master: string; old: string[] } {
  const old = (process.env.OLD_MASTER_KEY ?? "").split(",").filter(Boolean);
  return { master: process.env.MASTER_ENCRYPTION_KEY ?? "", old };
}

function setEnv(master: string, old: readonly string[]) {
  vi.stubEnv("MASTER_ENCRYPTION_KEY", master);
  vi.stubEnv("OLD_MASTER_KEY", old.join(","));
}

/** Secrets no key in `keys` (current first) can read: "where" for each; API keys must be hashed or plaintext of the right key. */
async function unreadable(d: Deployment, keys: readonly string[]): Promise<string[]> {
  const { t } = d;
  const { rootSalt } = await t.run((ctx) => readEncryptionSettings(ctx.db));
  const [current, ...previous] = keys;
  const keyring = Keyring.fromSecrets(current ?? "", previous, rootSalt);
  const rows = await t.run(async (ctx) => ({
    connections: await ctx.db.query("connections").collect(),
    users: await ctx.db.query("users").collect(),
    aiKeys: await ctx.db.query("aiKeys").collect(),
    apiKeys: await ctx.db.query("apiKeys").collect(),
  }));
  const lost: string[] = [];
  const attempt = async (where: string, read: () => Promise<unknown>, expected: unknown) => {
    try {
      if (JSON.stringify(await read()) !== JSON.stringify(expected)) lost.push(`${where}: wrong plaintext`);
    } catch {
      lost.push(where);
    }
  };
  for (const row of rows.connections) {
    const expected = d.connections.get(row._id);
    if (row.credentials) await attempt(`connections ${row._id}`, async () => row.credentials, expected);
    else await attempt(`connections ${row._id}`, async () => (await decryptCredentials(keyring, row.projectId, row._id, row.encryptedCredentials ?? "", row.secretVersion, LEGACY_READ)).credentials, expected);
  }
  for (const user of rows.users) {
    const onRow = rows.aiKeys.find((row) => row.userId === user._id && row.encryptedKey !== undefined);
    const expected = d.aiKeys.get(user._id);
    if (expected === undefined) continue;
    const value = onRow?.encryptedKey ?? user.aiApiKey;
    await attempt(`AI key of ${user._id}`, async () => (await decryptAiKey(keyring, user._id, value ?? "", onRow?.secretVersion, LEGACY_READ)).plaintext, expected);
  }
  for (const row of rows.apiKeys) {
    const plain = d.apiKeys.get(row._id) ?? "";
    if (row.keyHash !== plain && row.keyHash !== (await sha256Hex(plain))) lost.push(`apiKeys ${row._id}`);
  }
  return lost;
}

async function status(t: Backend) {
  return t.action(internal.keyRotation.status, {});
}

/** One job to its end, batch by batch (small batches), applying `midJob` after its first rewrite batch. */
async function runJob(t: Backend, start: () => Promise<unknown>, midJob: (() => void) | null): Promise<string | null> {
  try {
    await start();
  } catch (error) {
    return `refused: ${String((error as Error).message).slice(0, 60)}`;
  }
  const latest = () => t.run((ctx) => ctx.db.query("reencryptionJobs").order("desc").first());
  const job = await latest();
  await t.run((ctx) => ctx.db.patch("reencryptionJobs", job!._id, { budgets: { rows: 3, bytes: 8 * 1024 * 1024, derivations: 8 } }));
  for (let guard = 0; guard < 200; guard++) {
    const now = await latest();
    if (!now || now.status !== "running") return now?.status === "done" ? null : `${now?.status}: ${now?.stopReason?.code}`;
    if (midJob && now.phase === "rewrite" && now.counts.scanned > 0) {
      midJob();
      midJob = null;
    }
    vi.runOnlyPendingTimers();
    await t.finishInProgressScheduledFunctions();
  }
  throw new Error("the job did not end");
}

async function play(order: readonly Step[], variant: "wrong" | "add") {
  const d = await originalEra();
  const { t } = d;
  setEnv(ORIGINAL_KEY, []);
  const everConfigured = new Set([ORIGINAL_KEY]);
  let fresh = 0;
  let pendingChange: (() => void) | null = null;
  let refusal: string | null = null;
  const change = () => {
    const { master, old } = env();
    const next = variant === "wrong" && old.length > 0 ? [WRONG_KEY, ...old.slice(1)] : [...old, WRONG_KEY];
    setEnv(master, next);
  };
  for (const [index, step] of order.entries()) {
    const later = order.slice(index + 1);
    switch (step) {
      case "newKey": {
        const { master, old } = env();
        const key = FRESH_KEYS[fresh++] ?? "";
        everConfigured.add(key);
        setEnv(key, [master, ...old]);
        break;
      }
      case "removeOld":
        if ((await status(t)).safeToRemoveOldKey) {
          setEnv(env().master, []);
          seen.add("OLD_MASTER_KEY removed");
        }
        break;
      case "changeOld":
        if (later.includes("upgrade") || later.includes("rotate")) pendingChange = change;
        else change();
        break;
      default: {
        const start = step === "upgrade" ? () => t.mutation(internal.upgrade.run, {}) : () => t.mutation(internal.keyRotation.rotate, {});
        const outcome = await runJob(t, start, pendingChange);
        seen.add(outcome ?? "job done");
        refusal = outcome ?? refusal;
        pendingChange = null;
      }
    }
    // Never safe while a value needs an old key: then MASTER_ENCRYPTION_KEY alone reads everything.
    const now = await status(t);
    if (now.safeToRemoveOldKey) expect(await unreadable(d, [env().master]), `${order.join(" → ")} after ${step}`).toEqual([]);
  }
  // Whatever the order left, every secret-shaped value is in a field the registry lists.
  expect(await unregisteredSecretFields(t)).toEqual([]);
  const { master, old } = env();
  const lostNow = await unreadable(d, [master, ...old]);
  if (lostNow.length === 0) {
    seen.add(old.length === 0 && master !== ORIGINAL_KEY ? "ended rotated, OLD_MASTER_KEY removed, all readable" : "ended all readable");
    return;
  }
  seen.add("ended stopped at a refusal");
  // Stopped at a refusal: nothing destroyed, and status names the fix.
  expect(await unreadable(d, [master, ...old, ...everConfigured]), order.join(" → ")).toEqual([]);
  expect((await status(t)).next, `${order.join(" → ")} (${refusal ?? "no job refused"})`).toMatch(/OLD_MASTER_KEY/);
}

/** What the runs went through, to show the orders reach every interesting path. */
const seen = new Set<string>();

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

afterAll(() => {
  if (seen.size === 0) return; // a filtered run
  expect([...seen].sort()).toEqual(
    expect.arrayContaining([
      "OLD_MASTER_KEY removed",
      "ended all readable",
      "ended rotated, OLD_MASTER_KEY removed, all readable",
      "ended stopped at a refusal",
      "job done",
      "paused: KEY_MISSING",
      "stopped: UNKNOWN_KEY_IDS",
    ]),
  );
});

describe("every order of operator commands from an original-era deployment", () => {
  const orders = permutations(STEPS);
  test.each(orders.map((order, index) => [order.join(" → "), order, index % 2 === 0 ? "wrong" : "add"] as const))(
    "%s",
    async (_name, order, variant) => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
      vi.spyOn(console, "info").mockImplementation(() => {});
      vi.spyOn(console, "warn").mockImplementation(() => {});
      await play(order, variant);
    },
    60_000,
  );
});
