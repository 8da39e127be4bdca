// The master-key configuration as the app meets it: a key that is obviously
// not random (refused while nothing depends on it, flagged once data does),
// and an unusable OLD_MASTER_KEY entry (fails only the decrypts that need it).
import { describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { weakKeyReasons } from "../convex/lib/keyStrength";
import { errorOf } from "./helpers/api";
import { identity, newBackend } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, WEAK_MASTER_KEY } from "./helpers/keys";
import { encryptLegacy } from "./helpers/legacy";
import { SECRETS, useFakeProviders } from "./helpers/secrets";
import { seedConnection, seedProject } from "./helpers/seed";

const fake = useFakeProviders();

describe("weakKeyReasons", () => {
  test("generated keys pass; typed ones are named with every rule they break", () => {
    expect(weakKeyReasons(TEST_MASTER_KEY)).toEqual([]);
    expect(weakKeyReasons("Jq3Vb9xK2mT7wR4nZ8pL5sD1fH6gY0cA")).toEqual([]); // 32 base64-ish characters
    expect(weakKeyReasons(WEAK_MASTER_KEY)).toEqual(["repeated-run", "periodic", "low-variety", "low-entropy"]);
    expect(weakKeyReasons("abcdefghijklmnopqrstuvwxyz012345")).toEqual(["sequence"]);
    expect(weakKeyReasons("k3y!k3y!k3y!k3y!k3y!k3y!k3y!k3y!")).toEqual(["periodic", "low-variety"]);
    expect(weakKeyReasons("0101011010010110100101101001011001")).toEqual(["low-variety", "low-entropy"]);
    expect(weakKeyReasons("correct horse battery staple forever")).toEqual(["phrase"]);
    expect(weakKeyReasons("MyDashtrayProductionKey2024!!Xyz9")).toEqual(["phrase"]);
  });
});

describe("a master key that is obviously not random", () => {
  test("is refused while nothing is encrypted yet (ENCRYPTION_UNAVAILABLE with the openssl hint); nothing is written", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { alice: "admin" });
    const alice = t.withIdentity(identity("alice"));
    vi.stubEnv("MASTER_ENCRYPTION_KEY", WEAK_MASTER_KEY);

    const error = await errorOf(alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } }));
    expect(error).toMatchObject({ code: "ENCRYPTION_UNAVAILABLE", reason: "MASTER_KEY_WEAK", variable: "MASTER_ENCRYPTION_KEY" });
    expect(error.message).toMatch(/MASTER_ENCRYPTION_KEY looks non-random \(MASTER_KEY_WEAK: repeated-run/);
    expect(error.message).toContain("openssl rand -hex 32");
    expect(error.message).not.toContain(WEAK_MASTER_KEY);
    expect((await errorOf(alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey }))).code).toBe(
      "ENCRYPTION_UNAVAILABLE",
    );
    const stored = await t.run(async (ctx) => ({
      salts: await ctx.db.query("encryptionSettings").collect(),
      connections: await ctx.db.query("connections").collect(),
      aiKeys: await ctx.db.query("aiKeys").collect(),
    }));
    expect(stored).toEqual({ salts: [], connections: [], aiKeys: [] });

    // Rotation status flags it and says what to do.
    const status = await t.action(internal.keyRotation.status, {});
    expect(status.keys.currentKeyWeak).toEqual(["repeated-run", "periodic", "low-variety", "low-entropy"]);
    expect(status.next).toMatch(/openssl rand -hex 32/);

    // A generated key works at once.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", TEST_MASTER_KEY);
    await alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } });
  });

  test("is accepted once data depends on it (legacy rows), flagged with one warning per call and in rotation status", async () => {
    const t = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "admin" });
    const alice = t.withIdentity(identity("alice"));
    // The original Dashtray encrypted under this weak key: the data needs it.
    vi.stubEnv("MASTER_ENCRYPTION_KEY", WEAK_MASTER_KEY);
    await t.run(async (ctx) =>
      ctx.db.insert("aiKeys", {
        userId: userIds.alice!,
        provider: "openai",
        encryptedKey: await encryptLegacy(WEAK_MASTER_KEY, userIds.alice!, SECRETS.openaiKey),
        hint: "sk-…",
        createdAt: 0,
        updatedAt: 0,
      }),
    );
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});

    await alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } });
    const warnings = warn.mock.calls.map((call) => String(call[0])).filter((line) => line.includes("MASTER_ENCRYPTION_KEY"));
    expect(warnings).toEqual([
      "MASTER_ENCRYPTION_KEY looks non-random (repeated-run, periodic, low-variety, low-entropy): rotate to a generated key (docs/key-rotation.md)",
    ]);
    const status = await t.action(internal.keyRotation.status, {});
    expect(status.keys.currentKeyWeak).toEqual(["repeated-run", "periodic", "low-variety", "low-entropy"]);
    warn.mockRestore();
  });

  test("a rotation to it is refused, even when data exists under the old key", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { alice: "admin" });
    const alice = t.withIdentity(identity("alice"));
    await alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } });
    vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
    vi.stubEnv("MASTER_ENCRYPTION_KEY", WEAK_MASTER_KEY);
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const error = await errorOf(t.mutation(internal.keyRotation.rotate, {}));
    expect(error.code).toBe("ENCRYPTION_UNAVAILABLE");
    expect(error.message).toMatch(/MASTER_KEY_WEAK.*a rotation would move every secret onto it/);
    expect(await t.run((ctx) => ctx.db.query("reencryptionJobs").collect())).toEqual([]);
  });
});

describe("an unusable OLD_MASTER_KEY entry", () => {
  test("fails only the decrypts that need it, naming the variable and entry; encryption, sync and status keep working", async () => {
    const t = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "admin" });
    const alice = t.withIdentity(identity("alice"));
    const github = await seedConnection(t, projectId, "github", { token: SECRETS.githubToken, repository: SECRETS.githubRepository });
    // An AI key left by the original Dashtray under a key that is now only in OLD_MASTER_KEY, whose entry is mangled.
    await t.run(async (ctx) =>
      ctx.db.insert("aiKeys", {
        userId: userIds.alice!,
        provider: "openai",
        encryptedKey: await encryptLegacy(SECOND_MASTER_KEY, userIds.alice!, SECRETS.openaiKey),
        hint: "sk-…",
        createdAt: 0,
        updatedAt: 0,
      }),
    );
    vi.stubEnv("OLD_MASTER_KEY", "short");

    // Encryption works.
    const created = await alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: SECRETS.stripeKey } });
    expect(created).toBeTruthy();
    // A sync of a current-key row works.
    expect(await alice.action(api.connections.syncMetrics, { connectionId: github })).toMatchObject({ status: "active" });
    expect(fake().requests).toHaveLength(1);

    // The decrypt that needs the missing key fails naming the variable and the entry, never a value.
    const insight = await errorOf(alice.action(api.ai.generateInsight, { projectId }));
    expect(insight).toMatchObject({ code: "ENCRYPTION_UNAVAILABLE", reason: "MASTER_KEY_TOO_SHORT", variable: "OLD_MASTER_KEY" });
    expect(insight.message).toContain("OLD_MASTER_KEY (entry 1) is invalid (MASTER_KEY_TOO_SHORT)");
    expect(insight.message).not.toContain("short");

    // Status flags the entry.
    const status = await t.action(internal.keyRotation.status, {});
    expect(status.keys.invalidEntries).toEqual([{ variable: "OLD_MASTER_KEY", entry: 1, code: "MASTER_KEY_TOO_SHORT" }]);
    expect(status.keys.current).toEqual(expect.any(String));
  });
});
