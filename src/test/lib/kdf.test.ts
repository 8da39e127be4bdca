import { describe, expect, test } from "vitest";
import { decryptSecret, encryptSecret } from "../../convex/lib/cipher";
import { DEFAULT_PBKDF2_ITERATIONS, DerivedKeyCache, sharedKeyCache } from "../../convex/lib/kdf";
import { Keyring } from "../../convex/lib/keyring";
import { LruMap } from "../../convex/lib/lru";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "../helpers/keys";

/** A real AES key to hand out from stub derivations. */
async function someAesKey(): Promise<CryptoKey> {
  return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** A derive function that counts its calls and resolves on a later tick. */
function countingDerive(key: CryptoKey) {
  const derive = async () => {
    derive.calls++;
    await new Promise((resolve) => setTimeout(resolve, 1));
    return key;
  };
  derive.calls = 0;
  return derive;
}

describe("DerivedKeyCache with MasterKey.aesKey", () => {
  // Low iteration counts keep these fast; the cache key includes the count.
  const ITERATIONS = 1000;

  test("derives once per (scheme, master key, iterations, salt)", async () => {
    const cache = new DerivedKeyCache();
    const ring = await Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY]);
    const [current, previous] = ring.all;

    const first = await current!.aesKey("v1", "salt-a", ITERATIONS, cache);
    expect(await current!.aesKey("v1", "salt-a", ITERATIONS, cache)).toBe(first);
    expect(cache.derivations).toBe(1);
    expect(cache.hits).toBe(1);

    await current!.aesKey("v1", "salt-b", ITERATIONS, cache);
    await current!.aesKey("v1", "salt-a", ITERATIONS + 1, cache);
    await current!.aesKey("legacy", "salt-a", ITERATIONS, cache);
    await previous!.aesKey("v1", "salt-a", ITERATIONS, cache);
    expect(cache.derivations).toBe(5);
    expect(cache.size).toBe(5);
  });

  test("derived keys are non-extractable AES-256-GCM keys", async () => {
    const ring = await Keyring.fromSecrets(TEST_MASTER_KEY);
    const key = await ring.current.aesKey("v1", "salt-a", ITERATIONS, new DerivedKeyCache());
    expect(key.extractable).toBe(false);
    expect(key.algorithm).toMatchObject({ name: "AES-GCM", length: 256 });
    expect([...key.usages].sort()).toEqual(["decrypt", "encrypt"]);
  });

  test("encrypting and decrypting many values for one salt derives once", async () => {
    const cache = new DerivedKeyCache();
    const ring = await Keyring.fromSecrets(TEST_MASTER_KEY);
    const context = { salt: "project_many", purpose: "p" };
    for (let i = 0; i < 20; i++) {
      const sealed = await encryptSecret(ring, `value ${i}`, context, { cache });
      expect((await decryptSecret(ring, sealed, context, { cache })).plaintext).toBe(`value ${i}`);
    }
    expect(cache.derivations).toBe(1);
  });

  test("the shared cache is used by default with 100,000 iterations", async () => {
    const ring = await Keyring.fromSecrets(TEST_MASTER_KEY);
    const context = { salt: `project_shared_${crypto.randomUUID()}`, purpose: "p" };
    const before = sharedKeyCache.derivations;
    const sealed = await encryptSecret(ring, "x", context);
    await decryptSecret(ring, sealed, context);
    expect(sharedKeyCache.derivations - before).toBe(1);
    // A key derived with another iteration count does not open it.
    await expect(
      decryptSecret(ring, sealed, context, { iterations: DEFAULT_PBKDF2_ITERATIONS - 1, cache: new DerivedKeyCache() }),
    ).rejects.toMatchObject({ code: "DECRYPTION_FAILED" });
  });
});

describe("DerivedKeyCache", () => {
  test("evicts the least recently used key at capacity", async () => {
    const cache = new DerivedKeyCache(2);
    const derive = countingDerive(await someAesKey());
    await cache.getOrDerive("a", derive);
    await cache.getOrDerive("b", derive);
    await cache.getOrDerive("a", derive); // a is now more recent than b
    await cache.getOrDerive("c", derive); // evicts b
    expect(cache.size).toBe(2);
    expect(derive.calls).toBe(3);

    await cache.getOrDerive("a", derive);
    await cache.getOrDerive("c", derive);
    expect(derive.calls).toBe(3);
    await cache.getOrDerive("b", derive);
    expect(derive.calls).toBe(4);
    expect(cache.derivations).toBe(4);
  });

  test("concurrent requests for one key share one derivation", async () => {
    const cache = new DerivedKeyCache();
    const key = await someAesKey();
    const derive = countingDerive(key);
    const results = await Promise.all(Array.from({ length: 25 }, () => cache.getOrDerive("k", derive)));
    expect(derive.calls).toBe(1);
    expect(cache.derivations).toBe(1);
    for (const result of results) expect(result).toBe(key);
  });

  test("concurrent real derivations for one salt run PBKDF2 once", async () => {
    const cache = new DerivedKeyCache();
    const ring = await Keyring.fromSecrets(TEST_MASTER_KEY);
    const keys = await Promise.all(Array.from({ length: 10 }, () => ring.current.aesKey("v1", "salt-c", 1000, cache)));
    expect(cache.derivations).toBe(1);
    expect(new Set(keys).size).toBe(1);
  });

  test("a failed derivation is not cached, and its waiters all see the failure", async () => {
    const cache = new DerivedKeyCache();
    const key = await someAesKey();
    let attempts = 0;
    const flaky = async () => {
      attempts++;
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (attempts === 1) throw new Error("derivation failed");
      return key;
    };
    const first = await Promise.allSettled([cache.getOrDerive("k", flaky), cache.getOrDerive("k", flaky)]);
    expect(first.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    expect(cache.size).toBe(0);

    expect(await cache.getOrDerive("k", flaky)).toBe(key);
    expect(attempts).toBe(2);
    expect(await cache.getOrDerive("k", flaky)).toBe(key);
    expect(attempts).toBe(2);
  });

  test("clear() forgets every key", async () => {
    const cache = new DerivedKeyCache();
    const derive = countingDerive(await someAesKey());
    await cache.getOrDerive("k", derive);
    cache.clear();
    expect(cache.size).toBe(0);
    await cache.getOrDerive("k", derive);
    expect(derive.calls).toBe(2);
  });
});

describe("LruMap", () => {
  test("refuses a capacity that is not a positive integer", () => {
    for (const capacity of [0, -1, 1.5]) expect(() => new LruMap(capacity)).toThrow(RangeError);
  });

  test("overwriting a key refreshes it without growing", () => {
    const map = new LruMap<string, number>(2);
    map.set("a", 1);
    map.set("b", 2);
    map.set("a", 3);
    map.set("c", 4);
    expect(map.size).toBe(2);
    expect(map.get("a")).toBe(3);
    expect(map.get("b")).toBeUndefined();
  });
});
