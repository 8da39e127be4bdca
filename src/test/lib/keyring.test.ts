import { hkdfSync, pbkdf2Sync } from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { decryptSecret, encryptSecret, type SecretContext } from "../../convex/lib/cipher";
import { KEY_ID_BYTES, Keyring, MIN_MASTER_KEY_LENGTH } from "../../convex/lib/keyring";
import { ColdHarness } from "../helpers/cold";
import { expectCryptoError, expectNoSecrets } from "../helpers/cryptoErrors";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, TEST_ROOT_SALT, THIRD_MASTER_KEY } from "../helpers/keys";
import { encryptLegacy } from "../helpers/legacy";
import { encryptV1 } from "../helpers/v1";

const CONTEXT: SecretContext = { salt: "user_keyring_test", purpose: "aiKeys/user_keyring_test/apiKey", version: 1 };
const ALL_SECRETS = [TEST_MASTER_KEY, SECOND_MASTER_KEY, THIRD_MASTER_KEY];

/** The documented v2 key id, computed with node:crypto rather than the code under test. */
function expectedKeyId(secret: string, rootSalt = TEST_ROOT_SALT): string {
  const root = pbkdf2Sync(secret, Buffer.from(rootSalt, "base64url"), 100_000, 32, "sha256");
  return Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), "dashtray/v2/key-id", KEY_ID_BYTES)).toString("base64url");
}

/** The documented v1 key id. */
function expectedV1KeyId(secret: string): string {
  return pbkdf2Sync(secret, "dashtray/master-key-id/v1", 100_000, KEY_ID_BYTES, "sha256").toString("base64url");
}

/** A keyring from env, as a promise (so expectCryptoError can await a synchronous throw). */
function fromEnv(env: { MASTER_ENCRYPTION_KEY?: string; OLD_MASTER_KEY?: string }): Promise<Keyring> {
  return (async () => Keyring.fromEnv(env, TEST_ROOT_SALT))();
}

function ring(current: string, previous: string[] = []): Keyring {
  return Keyring.fromSecrets(current, previous, TEST_ROOT_SALT);
}

describe("key ids", () => {
  test("v2: base64url(HKDF-SHA256(PBKDF2(key, root salt, 100,000), info 'dashtray/v2/key-id', 8 bytes))", async () => {
    for (const secret of ALL_SECRETS) {
      const key = ring(secret).current;
      const id = await key.keyId();
      expect(id).toBe(expectedKeyId(secret));
      expect(id).toMatch(/^[A-Za-z0-9_-]{11}$/);
    }
  });

  test("v1: base64url(PBKDF2-SHA256(key, 'dashtray/master-key-id/v1', 100,000, 8 bytes)), derived only when asked", async () => {
    const keyring = ring(TEST_MASTER_KEY);
    expect(keyring.pbkdf2Runs).toBe(0);
    expect(await keyring.current.v1KeyId()).toBe(expectedV1KeyId(TEST_MASTER_KEY));
    expect(keyring.pbkdf2Runs).toBe(1);
  });

  test("differ between keys; equality compares secrets without deriving", async () => {
    const ids = await Promise.all(ALL_SECRETS.map((secret) => ring(secret).current.keyId()));
    expect(new Set(ids).size).toBe(3);
    expect(ring(TEST_MASTER_KEY).current.equals(ring(TEST_MASTER_KEY).current)).toBe(true);
    expect(ring(TEST_MASTER_KEY).current.equals(ring(SECOND_MASTER_KEY).current)).toBe(false);
  });

  test("loading derives nothing; findByKeyId derives roots lazily, in order, and stops at the match", async () => {
    const keyring = ring(TEST_MASTER_KEY, [SECOND_MASTER_KEY, THIRD_MASTER_KEY]);
    expect(keyring.pbkdf2Runs).toBe(0);
    expect(await keyring.findByKeyId(expectedKeyId(SECOND_MASTER_KEY))).toBe(keyring.previous[0]);
    expect(keyring.pbkdf2Runs).toBe(2);
    // Memoised: asking again costs nothing.
    expect(await keyring.findByKeyId(expectedKeyId(TEST_MASTER_KEY))).toBe(keyring.current);
    expect(keyring.pbkdf2Runs).toBe(2);
    const hinted = ring(TEST_MASTER_KEY, [SECOND_MASTER_KEY, THIRD_MASTER_KEY]);
    expect(await hinted.findByKeyId(expectedKeyId(THIRD_MASTER_KEY), { hint: 2 })).toBe(hinted.previous[1]);
    expect(hinted.pbkdf2Runs).toBe(1);
    expect(await hinted.findByKeyId("AAAAAAAAAAA")).toBeUndefined();
    expect(hinted.pbkdf2Runs).toBe(3);
  });

  test("key id hints (a rotation job's recorded ids): the hinted key is derived alone; a stale hint costs a derivation, never a wrong key", async () => {
    const order = {
      v2: [TEST_MASTER_KEY, SECOND_MASTER_KEY, THIRD_MASTER_KEY].map((secret) => expectedKeyId(secret)),
      v1: [TEST_MASTER_KEY, SECOND_MASTER_KEY, THIRD_MASTER_KEY].map((secret) => expectedV1KeyId(secret)),
    };
    const keyring = ring(TEST_MASTER_KEY, [SECOND_MASTER_KEY, THIRD_MASTER_KEY]).useKeyIdHints(order);
    expect(await keyring.findByKeyId(expectedKeyId(THIRD_MASTER_KEY))).toBe(keyring.previous[1]);
    expect(keyring.pbkdf2Runs).toBe(1);

    // A v1 value under the last old key: its header id is hinted, so one v1 key is derived for its salt.
    const v1Value = await encryptV1(THIRD_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, "v1 under an old key");
    const v1Keyring = ring(TEST_MASTER_KEY, [SECOND_MASTER_KEY, THIRD_MASTER_KEY]).useKeyIdHints(order);
    expect((await decryptSecret(v1Keyring, v1Value, CONTEXT)).plaintext).toBe("v1 under an old key");
    expect(v1Keyring.pbkdf2Runs).toBe(1);

    // OLD_MASTER_KEY reordered since the hints were recorded: the hinted entry is now another key.
    const reordered = ring(TEST_MASTER_KEY, [THIRD_MASTER_KEY, SECOND_MASTER_KEY]).useKeyIdHints(order);
    expect(await reordered.findByKeyId(expectedKeyId(THIRD_MASTER_KEY))).toBe(reordered.previous[0]);
    expect(reordered.pbkdf2Runs).toBe(3);
  });
});

describe("Keyring.fromEnv", () => {
  test.each([
    ["unset", undefined],
    ["empty", ""],
    ["whitespace", "   \n"],
  ])("%s MASTER_ENCRYPTION_KEY: MASTER_KEY_MISSING", async (_name, value) => {
    const error = await expectCryptoError(
      fromEnv({ MASTER_ENCRYPTION_KEY: value, OLD_MASTER_KEY: SECOND_MASTER_KEY }),
      "MASTER_KEY_MISSING",
      [SECOND_MASTER_KEY],
    );
    expect(error.message).toContain("MASTER_ENCRYPTION_KEY");
  });

  test("a key shorter than 32 characters: MASTER_KEY_TOO_SHORT, without echoing it", async () => {
    const short = "x7Kq9-short-master-key-31-chars";
    expect(short).toHaveLength(MIN_MASTER_KEY_LENGTH - 1);
    const error = await expectCryptoError(fromEnv({ MASTER_ENCRYPTION_KEY: short }), "MASTER_KEY_TOO_SHORT", [short]);
    expect(error.message).toContain("MASTER_ENCRYPTION_KEY");
    await expect(fromEnv({ MASTER_ENCRYPTION_KEY: `${short}!` })).resolves.toBeInstanceOf(Keyring);
  });

  test("a key with a comma (OLD_MASTER_KEY's separator): MASTER_KEY_INVALID, without echoing it", async () => {
    const withComma = "first-half-of-a-long-master-key,second-half-of-it";
    const error = await expectCryptoError(fromEnv({ MASTER_ENCRYPTION_KEY: withComma }), "MASTER_KEY_INVALID", [
      withComma,
      "first-half-of-a-long-master-key",
      "second-half-of-it",
    ]);
    expect(error.message).toContain("comma");
  });

  test("a short OLD_MASTER_KEY entry does not stop loading or encrypting; a value no key opens fails naming the entry", async () => {
    const short = "old-but-short-key";
    const keyring = await fromEnv({ MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY, OLD_MASTER_KEY: `${SECOND_MASTER_KEY},,${short}` });
    expect(keyring.invalidPrevious).toEqual([{ entry: 3, code: "MASTER_KEY_TOO_SHORT" }]);
    expect(keyring.previous).toHaveLength(1);
    const sealed = await encryptSecret(keyring, "still works", CONTEXT);
    expect((await decryptSecret(keyring, sealed, CONTEXT)).plaintext).toBe("still works");
    // A value under a key that is not configured: the unusable entry may be that key.
    const foreign = await encryptSecret(ring(THIRD_MASTER_KEY), "foreign", CONTEXT);
    const error = await expectCryptoError(decryptSecret(keyring, foreign, CONTEXT), "MASTER_KEY_TOO_SHORT", [
      short,
      TEST_MASTER_KEY,
      SECOND_MASTER_KEY,
      THIRD_MASTER_KEY,
      "foreign",
    ]);
    expect(error.message).toContain("OLD_MASTER_KEY (entry 3)");
    // Without unusable entries the same value is UNKNOWN_KEY_ID.
    await expectCryptoError(decryptSecret(ring(TEST_MASTER_KEY, [SECOND_MASTER_KEY]), foreign, CONTEXT), "UNKNOWN_KEY_ID");
  });

  test("surrounding whitespace of the current key is ignored", async () => {
    const padded = await fromEnv({ MASTER_ENCRYPTION_KEY: `  ${TEST_MASTER_KEY}\n` });
    const plain = await fromEnv({ MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY });
    expect(padded.current.equals(plain.current)).toBe(true);
  });

  test("OLD_MASTER_KEY: comma-separated, whitespace trimmed, empty entries and duplicates dropped", async () => {
    const ring = await fromEnv({
      MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY,
      OLD_MASTER_KEY: ` ${SECOND_MASTER_KEY} ,, \n${THIRD_MASTER_KEY},${SECOND_MASTER_KEY}, `,
    });
    expect(ring.previous.map((key) => key.source)).toEqual(["OLD_MASTER_KEY (entry 1)", "OLD_MASTER_KEY (entry 3)"]);
    expect(await Promise.all(ring.previous.map((key) => key.keyId()))).toEqual([
      expectedKeyId(SECOND_MASTER_KEY),
      expectedKeyId(THIRD_MASTER_KEY),
    ]);
    expect(ring.previousIncludesCurrent).toBe(false);
    expect(ring.invalidPrevious).toEqual([]);
    expect(ring.all).toEqual([ring.current, ...ring.previous]);
  });

  test("OLD_MASTER_KEY listing the current key sets previousIncludesCurrent and is not kept as previous", async () => {
    const ring = await fromEnv({
      MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY,
      OLD_MASTER_KEY: `${TEST_MASTER_KEY},${SECOND_MASTER_KEY}`,
    });
    expect(ring.previousIncludesCurrent).toBe(true);
    expect(await Promise.all(ring.previous.map((key) => key.keyId()))).toEqual([expectedKeyId(SECOND_MASTER_KEY)]);
  });

  test("no OLD_MASTER_KEY (unset or empty): no previous keys", async () => {
    for (const old of [undefined, "", " , "]) {
      const ring = await fromEnv({ MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY, OLD_MASTER_KEY: old });
      expect(ring.previous).toEqual([]);
      expect(ring.previousIncludesCurrent).toBe(false);
    }
  });
});

describe("rotation", () => {
  test("an old key still decrypts, flagged for re-encryption; re-encrypting moves it to the current key", async () => {
    const before = ring(TEST_MASTER_KEY);
    const sealedBefore = await encryptSecret(before, "sk-ant-rotation-test", CONTEXT);

    const during = ring(SECOND_MASTER_KEY, [TEST_MASTER_KEY]);
    expect(await decryptSecret(during, sealedBefore, CONTEXT)).toEqual({
      plaintext: "sk-ant-rotation-test",
      format: "v2",
      keyId: await before.current.keyId(),
      needsReencryption: true,
    });

    const sealedAfter = await encryptSecret(during, "sk-ant-rotation-test", CONTEXT);
    expect(sealedAfter.split(":")[2]).toBe(await during.current.keyId());
    expect(await decryptSecret(during, sealedAfter, CONTEXT)).toMatchObject({
      keyId: await during.current.keyId(),
      needsReencryption: false,
    });

    // Once the old key is removed, only re-encrypted values decrypt.
    const after = ring(SECOND_MASTER_KEY);
    expect((await decryptSecret(after, sealedAfter, CONTEXT)).plaintext).toBe("sk-ant-rotation-test");
    const error = await expectCryptoError(decryptSecret(after, sealedBefore, CONTEXT), "UNKNOWN_KEY_ID", [
      TEST_MASTER_KEY,
      SECOND_MASTER_KEY,
      "sk-ant-rotation-test",
    ]);
    expect(error.message).toContain(await before.current.keyId());
  });

  test("a key listed in several places decrypts its values (needsReencryption only for non-current keys)", async () => {
    const keyring = ring(THIRD_MASTER_KEY, [SECOND_MASTER_KEY, TEST_MASTER_KEY]);
    for (const secret of ALL_SECRETS) {
      const sealed = await encryptSecret(ring(secret), "value", CONTEXT);
      const opened = await decryptSecret(keyring, sealed, CONTEXT);
      expect(opened.plaintext).toBe("value");
      expect(opened.needsReencryption).toBe(secret !== THIRD_MASTER_KEY);
    }
  });
});

describe("keys and keyrings never show their secrets", () => {
  test("JSON.stringify, String() and inspect show where keys came from, never a secret (also after deriving)", async () => {
    const keyring = ring(TEST_MASTER_KEY, [SECOND_MASTER_KEY, "short-old-key"]);
    const key = keyring.current;
    await encryptSecret(keyring, "value", CONTEXT);
    expect(JSON.parse(JSON.stringify(key))).toEqual({ source: "MASTER_ENCRYPTION_KEY" });
    expect(JSON.parse(JSON.stringify(keyring))).toEqual({
      current: "MASTER_ENCRYPTION_KEY",
      previous: ["OLD_MASTER_KEY (entry 1)"],
      invalidPrevious: [{ entry: 2, code: "MASTER_KEY_TOO_SHORT" }],
    });
    expect(String(key)).toBe("MasterKey(MASTER_ENCRYPTION_KEY)");
    expect(`${keyring}`).toBe("Keyring(current=MASTER_ENCRYPTION_KEY, previous=[OLD_MASTER_KEY (entry 1)])");
    for (const rendering of [inspect(key, { showHidden: true }), inspect(keyring, { showHidden: true, depth: 5 }), Object.keys(key).join()]) {
      for (const secret of [TEST_MASTER_KEY, SECOND_MASTER_KEY, "short-old-key"]) expect(rendering).not.toContain(secret);
    }
  });

  test("an error wrapping a key does not reveal it", async () => {
    const keyring = ring(TEST_MASTER_KEY);
    expectNoSecrets(new Error(`bad key ${keyring.current} in ${keyring}`), [TEST_MASTER_KEY]);
  });
});

describe("pbkdf2Runs (the rotation job's derivation budget relies on it)", () => {
  test("equals the PBKDF2 runs counted at crypto.subtle, for roots, v1 ids, v1 and legacy keys", async () => {
    const v1Value = await encryptV1(SECOND_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, "v1 secret");
    const legacyValue = await encryptLegacy(SECOND_MASTER_KEY, CONTEXT.salt, "legacy secret");
    const counter = new ColdHarness();
    counter.install();
    try {
      const keyring = ring(TEST_MASTER_KEY, [THIRD_MASTER_KEY, SECOND_MASTER_KEY]);
      const written = await encryptSecret(keyring, "v2 secret", CONTEXT);
      await decryptSecret(keyring, written, CONTEXT);
      await keyring.current.v1KeyId();
      await decryptSecret(keyring, v1Value, CONTEXT);
      await decryptSecret(keyring, legacyValue, CONTEXT);
      await keyring.findByKeyId("AAAAAAAAAAA");
      expect(counter.counts.pbkdf2).toBeGreaterThan(5);
      expect(keyring.pbkdf2Runs).toBe(counter.counts.pbkdf2);
    } finally {
      counter.uninstall();
    }
  });
});
