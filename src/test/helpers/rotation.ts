/**
 * Fixtures and drivers for key-rotation tests and benchmarks: a backend that
 * enforces Convex's per-transaction limits, encrypted rows created the way
 * the storage API writes them, and helpers that run the scheduled batch
 * chain one batch at a time or to the end.
 */
import { afterEach, beforeEach, vi } from "vitest";
import type { Id } from "../../convex/_generated/dataModel";
import { Keyring } from "../../convex/lib/keyring";
import { encryptAiKey, encryptCredentials, ensureRootSalt } from "../../convex/storedSecrets/encryption";
import { ColdHarness } from "./cold";
import { encryptV1 } from "./v1";
import type { Credentials } from "../../convex/validators";

/** A cold backend (fresh module graph per function execution) that enforces the real per-transaction read/write limits. */
export function newLimitedBackend() {
  return rotationHarness.backend({ transactionLimits: true });
}

export type LimitedBackend = ReturnType<typeof newLimitedBackend>;

/** Random printable characters, for secrets that differ per row. */
export function randomText(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (byte) => alphabet[byte % alphabet.length]).join("");
}

export interface Sizes {
  projects: number;
  connectionsPerProject: number;
  users: number;
}

/** The plaintext of every seeded secret, to compare with after a rotation. */
export interface Seeded {
  userIds: Id<"users">[];
  projectIds: Id<"projects">[];
  credentials: Map<Id<"connections">, Credentials>;
  aiKeys: Map<Id<"aiKeys">, string>;
}

/**
 * Inserts users (one AI key each), projects and their connections, all
 * encrypted under `masterKey` as the storage API writes them (format v2,
 * secret version 1), or in format v1 as the previous version wrote them
 * (`format: "v1"`, no version). Connections are inserted round-robin across
 * projects, so creation order is not index order.
 */
export async function seedEncrypted(
  t: LimitedBackend,
  sizes: Sizes,
  masterKey: string,
  { format = "v2" }: { format?: "v1" | "v2" } = {},
): Promise<Seeded> {
  const now = Date.now();
  const ids = await t.run(async (ctx) => {
    const userIds: Id<"users">[] = [];
    for (let i = 0; i < sizes.users; i++) {
      userIds.push(await ctx.db.insert("users", { tokenIdentifier: `https://auth.test|user${i}`, createdAt: now }));
    }
    const projectIds: Id<"projects">[] = [];
    for (let i = 0; i < sizes.projects; i++) {
      const createdBy = userIds[i % userIds.length];
      if (!createdBy) throw new Error("seedEncrypted needs at least one user");
      projectIds.push(await ctx.db.insert("projects", { name: `Project ${i}`, createdBy, createdAt: now }));
    }
    const connections: { id: Id<"connections">; projectId: Id<"projects"> }[] = [];
    for (let round = 0; round < sizes.connectionsPerProject; round++) {
      for (const projectId of projectIds) {
        const id = await ctx.db.insert("connections", {
          projectId,
          service: "stripe",
          name: `Stripe ${round}`,
          credentialHints: { secretKey: "sk_live_…" },
          status: "active",
          healthScore: 100,
          createdAt: now,
          updatedAt: now,
        });
        connections.push({ id, projectId });
      }
    }
    const aiKeys: { id: Id<"aiKeys">; userId: Id<"users"> }[] = [];
    for (const userId of userIds) {
      const id = await ctx.db.insert("aiKeys", { userId, provider: "openai", hint: "sk-…", createdAt: now, updatedAt: now });
      aiKeys.push({ id, userId });
    }
    return { userIds, projectIds, connections, aiKeys };
  });

  const keyring = Keyring.fromSecrets(masterKey, [], await t.run((ctx) => ensureRootSalt(ctx.db)));
  const credentials = new Map<Id<"connections">, Credentials>();
  const aiKeys = new Map<Id<"aiKeys">, string>();
  const v1 = format === "v1";
  const [connectionCiphertexts, aiKeyCiphertexts] = await Promise.all([
    Promise.all(
      ids.connections.map(({ id, projectId }) => {
        const value = { secretKey: `sk_live_${randomText(24)}` };
        credentials.set(id, value);
        return v1
          ? encryptV1(masterKey, projectId, `connections/${id}/credentials`, JSON.stringify(value))
          : encryptCredentials(keyring, projectId, id, value, 1);
      }),
    ),
    Promise.all(
      ids.aiKeys.map(({ id, userId }) => {
        const value = `sk-proj-${randomText(40)}`;
        aiKeys.set(id, value);
        return v1 ? encryptV1(masterKey, userId, `aiKeys/${userId}/apiKey`, value) : encryptAiKey(keyring, userId, value, 1);
      }),
    ),
  ]);
  const version = v1 ? {} : { secretVersion: 1 };
  await t.run(async (ctx) => {
    for (const [index, { id }] of ids.connections.entries()) {
      await ctx.db.patch("connections", id, { encryptedCredentials: connectionCiphertexts[index], ...version });
    }
    for (const [index, { id }] of ids.aiKeys.entries()) {
      await ctx.db.patch("aiKeys", id, { encryptedKey: aiKeyCiphertexts[index], ...version });
    }
  });
  return { userIds: ids.userIds, projectIds: ids.projectIds, credentials, aiKeys };
}

/** Runs the scheduled batch chain to its end (needs vi.useFakeTimers()). */
export async function runAllBatches(t: LimitedBackend): Promise<void> {
  await t.finishAllScheduledFunctions(() => vi.runAllTimers(), 100_000);
}

/** Runs the one batch scheduled now, and waits for it (needs vi.useFakeTimers()). */
export async function runOneBatch(t: LimitedBackend): Promise<void> {
  vi.runOnlyPendingTimers();
  await t.finishInProgressScheduledFunctions();
}

/**
 * The cold harness every rotation test backend runs on: each batch (each
 * function execution) on a fresh module graph, PBKDF2 counted at
 * crypto.subtle. Test files install it with `useRotationHarness()`.
 */
export const rotationHarness = new ColdHarness();

/** Installs the rotation harness's counters before each test and restores crypto.subtle after it. */
export function useRotationHarness(): ColdHarness {
  beforeEach(() => {
    rotationHarness.reset();
    rotationHarness.install();
  });
  afterEach(() => rotationHarness.uninstall());
  return rotationHarness;
}

/** PBKDF2 runs since the test started, counted at crypto.subtle by the harness (whoever ran them). */
export function derivationCount(): number {
  return rotationHarness.counts.pbkdf2;
}

/** Every document of the given tables, for before/after comparisons. */
export async function snapshotTables(t: LimitedBackend, tables: readonly DataTable[] = DATA_TABLES) {
  return t.run(async (ctx) => {
    const snapshot: Record<string, unknown[]> = {};
    for (const table of tables) snapshot[table] = await ctx.db.query(table).collect();
    return snapshot;
  });
}

/** Every table except the rotation job's own bookkeeping. */
export const DATA_TABLES = [
  "users",
  "projects",
  "projectMembers",
  "connections",
  "aiKeys",
  "apiKeys",
  "metrics",
  "insights",
  "auditLog",
] as const;
export type DataTable = (typeof DATA_TABLES)[number];
