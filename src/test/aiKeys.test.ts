import { beforeEach, expect, test } from "vitest";
import { LEGACY_READ } from "./helpers/legacy";
import { api } from "../convex/_generated/api";
import { decryptAiKey, loadKeyring, readRootSalt } from "../convex/storedSecrets/encryption";
import { errorOf, everythingStored, userIdOf, type Caller } from "./helpers/api";
import { identity, newBackend, type Backend } from "./helpers/convex";

const OPENAI_KEY = "sk-proj-AiKeysTestKey0000000000001234";
const ANTHROPIC_KEY = "sk-ant-api03-AiKeysTestKey000000005678";

let t: Backend;
let alice: Caller;

beforeEach(() => {
  t = newBackend();
  alice = t.withIdentity(identity("alice"));
});

function storedAiKeys() {
  return t.run((ctx) => ctx.db.query("aiKeys").collect());
}

test("set stores only ciphertext salted with the user, get shows provider and hint", async () => {
  await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: `  ${OPENAI_KEY}\n` });
  const summary = await alice.query(api.aiKeys.get, {});
  expect(summary).toEqual({ provider: "openai", hint: "sk-proj-…1234", updatedAt: expect.any(Number) });
  const [stored] = await storedAiKeys();
  expect(stored?.apiKey).toBeUndefined();
  expect(await everythingStored(t)).not.toContain(OPENAI_KEY);
  const userId = await userIdOf(t, "alice");
  const decrypted = await t.run(async (ctx) =>
    decryptAiKey(loadKeyring(await readRootSalt(ctx.db)), userId, stored?.encryptedKey ?? "", stored?.secretVersion, LEGACY_READ),
  );
  expect(stored?.secretVersion).toBe(1);
  expect(decrypted.plaintext).toBe(OPENAI_KEY);
});

test("one key per user: set replaces the previous key and drops legacy plaintext", async () => {
  await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: OPENAI_KEY });
  await t.run(async (ctx) => {
    const [row] = await ctx.db.query("aiKeys").collect();
    if (row) await ctx.db.patch("aiKeys", row._id, { apiKey: OPENAI_KEY });
  });
  await alice.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: ANTHROPIC_KEY });
  const rows = await storedAiKeys();
  expect(rows).toHaveLength(1);
  expect(rows[0]?.apiKey).toBeUndefined();
  expect(await alice.query(api.aiKeys.get, {})).toMatchObject({ provider: "anthropic", hint: "sk-ant-…5678" });
  expect(await everythingStored(t)).not.toContain(OPENAI_KEY);
});

test("set bumps the secret version: the replaced ciphertext, restored into the row, no longer decrypts", async () => {
  await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: OPENAI_KEY });
  const [first] = await storedAiKeys();
  await alice.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: ANTHROPIC_KEY });
  const [second] = await storedAiKeys();
  expect([first?.secretVersion, second?.secretVersion]).toEqual([1, 2]);
  await t.run((ctx) => ctx.db.patch("aiKeys", second!._id, { encryptedKey: first?.encryptedKey }));
  const userId = await userIdOf(t, "alice");
  const call = t.run(async (ctx) => {
    const row = await ctx.db.get("aiKeys", second!._id);
    return decryptAiKey(loadKeyring(await readRootSalt(ctx.db)), userId, row?.encryptedKey ?? "", row?.secretVersion, LEGACY_READ);
  });
  expect((await errorOf(call)).code).toBe("DECRYPTION_FAILED");
});

test("each user's key is their own, and encrypted with their own salt", async () => {
  const bob = t.withIdentity(identity("bob"));
  await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: OPENAI_KEY });
  expect(await bob.query(api.aiKeys.get, {})).toBeNull();
  await bob.mutation(api.aiKeys.set, { provider: "openai", apiKey: OPENAI_KEY });
  const [first, second] = await storedAiKeys();
  expect(first?.encryptedKey).not.toEqual(second?.encryptedKey);
  const bobId = await userIdOf(t, "bob");
  // Alice's ciphertext does not decrypt as Bob's.
  const call = t.run(async (ctx) =>
    decryptAiKey(loadKeyring(await readRootSalt(ctx.db)), bobId, first?.encryptedKey ?? "", first?.secretVersion, LEGACY_READ),
  );
  expect((await errorOf(call)).code).toBe("DECRYPTION_FAILED");
});

test("remove deletes the key (the row stays as a tombstone with its version only); get is then null; removing again is a no-op", async () => {
  await alice.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: ANTHROPIC_KEY });
  await alice.mutation(api.aiKeys.remove, {});
  expect(await alice.query(api.aiKeys.get, {})).toBeNull();
  const [tombstone, ...others] = await storedAiKeys();
  expect(others).toEqual([]);
  expect(tombstone).toMatchObject({ secretVersion: 1, hint: "", removedAt: expect.any(Number) });
  expect(tombstone?.encryptedKey).toBeUndefined();
  expect(tombstone?.apiKey).toBeUndefined();
  await alice.mutation(api.aiKeys.remove, {});
  const actions = (await t.run((ctx) => ctx.db.query("auditLog").collect())).map((entry) => entry.action);
  expect(actions).toEqual(["aiKey.set", "aiKey.removed"]);
});

test("get before the user's first mutation is null", async () => {
  expect(await alice.query(api.aiKeys.get, {})).toBeNull();
});

test.each([
  ["empty", "openai", "   "],
  ["too short", "openai", "sk-abc"],
  ["too long", "openai", `sk-${"a".repeat(600)}`],
  ["another provider's key", "openai", "pk_live_NotAnOpenAiKey000000000000"],
  ["an OpenAI key for Anthropic", "anthropic", OPENAI_KEY],
  ["containing whitespace", "openai", "sk-proj-AiKeys Test Key 0000000000"],
] as const)("refuses a key that is %s with INVALID_ARGUMENT, never echoing it", async (_case, provider, apiKey) => {
  const error = await errorOf(alice.mutation(api.aiKeys.set, { provider, apiKey }));
  expect(error.code).toBe("INVALID_ARGUMENT");
  if (apiKey.trim()) expect(error.message).not.toContain(apiKey.trim());
  expect(await storedAiKeys()).toEqual([]);
});
