/**
 * The project on a Convex backend without HKDF (backends before
 * precompiled-2026-07-23): crypto.subtle is wrapped so that importKey,
 * deriveBits and deriveKey throw on "HKDF", and every call still works,
 * including reading format v2 data written by the earlier code, which
 * derived its keys with crypto.subtle's HKDF.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { aiKeySecretContext, connectionSecretContext, ensureRootSalt } from "../convex/storedSecrets/encryption";
import { identity, newBackend, type Backend } from "./helpers/convex";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "./helpers/keys";
import { FORMAT_VECTORS } from "./independent/vectorFile";
import { decryptSecret } from "../convex/lib/cipher";
import { Keyring } from "../convex/lib/keyring";
import { seedProject, seedUser } from "./helpers/seed";
import { SECRETS, expectNoSecrets, useFakeProviders } from "./helpers/secrets";

const fake = useFakeProviders();
const encoder = new TextEncoder();

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));
}

/**
 * A format v2 value as the code before this change wrote it, from
 * docs/encryption.md: root = PBKDF2(master, root salt, 100,000), imported as
 * an HKDF key; key id and AES key by crypto.subtle's HKDF. Runs before HKDF is
 * removed.
 */
async function encryptWithSubtleHkdf(
  masterKey: string,
  rootSalt: string,
  plaintext: string,
  context: { purpose: string; version: number; salt: string },
): Promise<string> {
  const password = await crypto.subtle.importKey("raw", encoder.encode(masterKey), "PBKDF2", false, ["deriveBits"]);
  const root = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: fromBase64Url(rootSalt), iterations: 100_000 },
    password,
    256,
  );
  const ikm = await crypto.subtle.importKey("raw", root, "HKDF", false, ["deriveBits", "deriveKey"]);
  const hkdf = (info: string) => ({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(info) });
  const keyId = base64Url(new Uint8Array(await crypto.subtle.deriveBits(hkdf("dashtray/v2/key-id"), ikm, 64)));
  const key = await crypto.subtle.deriveKey(hkdf(`dashtray/v2/aes-256-gcm/${context.salt}`), ikm, { name: "AES-GCM", length: 256 }, false, [
    "encrypt",
  ]);
  const header = `dtenc:v2:${keyId}`;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const additionalData = encoder.encode(`${header}:${context.version}:${context.purpose}`);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData }, key, encoder.encode(plaintext)));
  return `${header}:${base64Url(iv)}:${base64Url(sealed)}`;
}

/** HKDF requests seen while removed (each one also threw). */
let hkdfRequests: string[] = [];

function isHkdf(algorithm: unknown): boolean {
  const name = typeof algorithm === "string" ? algorithm : (algorithm as { name?: unknown } | null)?.name;
  return typeof name === "string" && name.toUpperCase() === "HKDF";
}

/** Makes crypto.subtle behave like a backend without HKDF: importKey/deriveBits/deriveKey throw on it. */
function removeHkdf(): () => void {
  const subtle = crypto.subtle;
  const methods = ["importKey", "deriveBits", "deriveKey"] as const;
  const saved = methods.map((name) => [name, Object.getOwnPropertyDescriptor(subtle, name)] as const);
  for (const name of methods) {
    const original = subtle[name] as (...args: unknown[]) => Promise<unknown>;
    // importKey's algorithm is its third argument; deriveBits' and deriveKey's their first.
    const algorithmAt = name === "importKey" ? 2 : 0;
    Object.defineProperty(subtle, name, {
      configurable: true,
      writable: true,
      value: function (this: SubtleCrypto, ...args: unknown[]) {
        if (isHkdf(args[algorithmAt])) {
          hkdfRequests.push(name);
          return Promise.reject(new DOMException("Unrecognized algorithm name: HKDF", "NotSupportedError"));
        }
        return original.apply(this, args);
      },
    });
  }
  return () => {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(subtle, name, descriptor);
      else delete (subtle as unknown as Record<string, unknown>)[name];
    }
  };
}

let restore: (() => void) | null = null;
beforeEach(() => {
  hkdfRequests = [];
});
afterEach(() => {
  restore?.();
  restore = null;
  // Nothing in the project asked for HKDF while it was removed.
  expect(hkdfRequests).toEqual([]);
});

test("the removal works: crypto.subtle refuses HKDF while removed", async () => {
  restore = removeHkdf();
  await expect(crypto.subtle.importKey("raw", new Uint8Array(32), "HKDF", false, ["deriveBits"])).rejects.toThrow(/HKDF/);
  expect(hkdfRequests).toEqual(["importKey"]);
  hkdfRequests = [];
});

describe("without HKDF in crypto.subtle", () => {
  test("the committed format vectors decrypt (v2 ones were made with HKDF)", async () => {
    restore = removeHkdf();
    const { current, old } = FORMAT_VECTORS.masterKeys;
    const keyring = Keyring.fromSecrets(current, [old], FORMAT_VECTORS.rootSalt);
    const v2 = FORMAT_VECTORS.vectors.filter((vector) => vector.format === "v2");
    expect(v2.length).toBeGreaterThan(0);
    for (const vector of v2) {
      const opened = await decryptSecret(keyring, vector.ciphertext, vector);
      expect(opened.plaintext).toBe(vector.plaintext);
      expect(opened.keyId).toBe(vector.keyId);
    }
  });

  test("data written with crypto.subtle's HKDF is read by sync and insights; writes, verify and rotation work", async () => {
    const t: Backend = newBackend();
    const { projectId, userIds } = await seedProject(t, { alice: "owner" });
    const rootSalt = await t.run((ctx) => ensureRootSalt(ctx.db));
    const aliceId = userIds.alice!;
    // Written by the earlier code's derivation, before HKDF goes away.
    const github = { token: SECRETS.githubToken, repository: SECRETS.githubRepository };
    const connectionId: Id<"connections"> = await t.run((ctx) =>
      ctx.db.insert("connections", {
        projectId,
        service: "github",
        name: "GitHub",
        credentialHints: {},
        status: "active",
        healthScore: 100,
        createdAt: Date.now(),
        updatedAt: Date.now(),
        secretVersion: 1,
      }),
    );
    const encryptedCredentials = await encryptWithSubtleHkdf(
      TEST_MASTER_KEY,
      rootSalt,
      JSON.stringify(github),
      connectionSecretContext(projectId, connectionId, 1),
    );
    await t.run((ctx) => ctx.db.patch("connections", connectionId, { encryptedCredentials }));
    const encryptedKey = await encryptWithSubtleHkdf(TEST_MASTER_KEY, rootSalt, SECRETS.openaiKey, aiKeySecretContext(aliceId, 1));
    await t.run((ctx) =>
      ctx.db.insert("aiKeys", {
        userId: aliceId,
        provider: "openai",
        encryptedKey,
        secretVersion: 1,
        hint: "…0001",
        createdAt: Date.now(),
        updatedAt: Date.now(),
      }),
    );

    restore = removeHkdf();
    const alice = t.withIdentity(identity("alice"));
    // Reads of data written with HKDF.
    expect(await alice.action(api.connections.syncMetrics, { connectionId })).toEqual({ status: "active", metricsStored: 4 });
    expect(fake().requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.githubToken}`);
    const insight = await alice.action(api.ai.generateInsight, { projectId });
    expectNoSecrets(insight);
    expect(fake().requests.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.openaiKey}`);
    // Writes, and reading them back.
    const bobId = await seedUser(t, "bob");
    expect(bobId).toBeTruthy();
    const bob = t.withIdentity(identity("bob"));
    await bob.mutation(api.aiKeys.set, { provider: "anthropic", apiKey: SECRETS.anthropicKey });
    expect(await bob.action(api.ai.verifyKey, { provider: "anthropic", apiKey: SECRETS.anthropicKey })).toEqual({ valid: true });
    await alice.mutation(api.connections.updateCredentials, { connectionId, credentials: { ...github } });
    expect(await alice.action(api.connections.syncMetrics, { connectionId })).toEqual({ status: "active", metricsStored: 4 });

    // Rotation: the data written with HKDF under the old key, re-encrypted under a new one.
    vi.useFakeTimers();
    try {
      vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
      vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
      expect((await t.mutation(internal.keyRotation.rotate, {})).outcome).toBe("started");
      await t.finishAllScheduledFunctions(() => vi.runAllTimers(), 1_000);
      const { job, safeToRemoveOldKey } = await t.action(internal.keyRotation.status, {});
      expect(job).toMatchObject({ status: "done" });
      expect(safeToRemoveOldKey).toBe(true);
      expect(job?.counts).toMatchObject({ reEncrypted: 3, failed: 0 });
      vi.stubEnv("OLD_MASTER_KEY", "");
    } finally {
      vi.useRealTimers();
    }
    expect(await alice.action(api.connections.syncMetrics, { connectionId })).toEqual({ status: "active", metricsStored: 4 });
    expect(await bob.action(api.ai.verifyKey, { provider: "openai", apiKey: SECRETS.openaiKey })).toEqual({ valid: true });
  });
});
