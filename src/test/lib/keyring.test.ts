import { pbkdf2Sync } from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { decryptSecret, encryptSecret, type SecretContext } from "../../convex/lib/cipher";
import {
  clearKeyIdCache,
  KEY_ID_BYTES,
  Keyring,
  keyIdDerivationCount,
  MIN_MASTER_KEY_LENGTH,
  MasterKey,
} from "../../convex/lib/keyring";
import { expectCryptoError, expectNoSecrets } from "../helpers/cryptoErrors";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "../helpers/keys";

const CONTEXT: SecretContext = { salt: "user_keyring_test", purpose: "aiKeys/user_keyring_test/apiKey" };
const ALL_SECRETS = [TEST_MASTER_KEY, SECOND_MASTER_KEY, THIRD_MASTER_KEY];

/** The documented key id, computed with node:crypto rather than the code under test. */
function expectedKeyId(secret: string): string {
  return pbkdf2Sync(secret, "dashtray/master-key-id/v1", 100_000, KEY_ID_BYTES, "sha256").toString("base64url");
}

describe("key ids", () => {
  test("are base64url(PBKDF2-SHA256(key, 'dashtray/master-key-id/v1', 100,000, 8 bytes))", async () => {
    for (const secret of ALL_SECRETS) {
      const key = await MasterKey.create(secret);
      expect(key.id).toBe(expectedKeyId(secret));
      expect(key.id).toMatch(/^[A-Za-z0-9_-]{11}$/);
    }
  });

  test("differ between keys and are stable for one key", async () => {
    const ids = await Promise.all(ALL_SECRETS.map(async (secret) => (await MasterKey.create(secret)).id));
    expect(new Set(ids).size).toBe(3);
    expect((await MasterKey.create(TEST_MASTER_KEY)).equals(await MasterKey.create(TEST_MASTER_KEY))).toBe(true);
    expect((await MasterKey.create(TEST_MASTER_KEY)).equals(await MasterKey.create(SECOND_MASTER_KEY))).toBe(false);
  });

  test("are computed once per isolate: a cold keyring load costs one derivation per key, a warm one none", async () => {
    clearKeyIdCache();
    const cold = keyIdDerivationCount();
    await Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY, THIRD_MASTER_KEY]);
    expect(keyIdDerivationCount() - cold).toBe(3);
    const warm = keyIdDerivationCount();
    await Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY]);
    expect(keyIdDerivationCount() - warm).toBe(0);
  });
});

describe("Keyring.fromEnv", () => {
  test.each([
    ["unset", undefined],
    ["empty", ""],
    ["whitespace", "   \n"],
  ])("%s MASTER_ENCRYPTION_KEY: MASTER_KEY_MISSING", async (_name, value) => {
    const error = await expectCryptoError(
      Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: value, OLD_MASTER_KEY: SECOND_MASTER_KEY }),
      "MASTER_KEY_MISSING",
      [SECOND_MASTER_KEY],
    );
    expect(error.message).toContain("MASTER_ENCRYPTION_KEY");
  });

  test("a key shorter than 32 characters: MASTER_KEY_TOO_SHORT, without echoing it", async () => {
    const short = "x7Kq9-short-master-key-31-chars";
    expect(short).toHaveLength(MIN_MASTER_KEY_LENGTH - 1);
    const error = await expectCryptoError(Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: short }), "MASTER_KEY_TOO_SHORT", [short]);
    expect(error.message).toContain("MASTER_ENCRYPTION_KEY");
    await expect(Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: `${short}!` })).resolves.toBeInstanceOf(Keyring);
  });

  test("a key with a comma (OLD_MASTER_KEY's separator): MASTER_KEY_INVALID, without echoing it", async () => {
    const withComma = "first-half-of-a-long-master-key,second-half-of-it";
    const error = await expectCryptoError(Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: withComma }), "MASTER_KEY_INVALID", [
      withComma,
      "first-half-of-a-long-master-key",
      "second-half-of-it",
    ]);
    expect(error.message).toContain("comma");
  });

  test("a short OLD_MASTER_KEY entry: MASTER_KEY_TOO_SHORT naming OLD_MASTER_KEY, without echoing it", async () => {
    const short = "old-but-short-key";
    const error = await expectCryptoError(
      Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY, OLD_MASTER_KEY: `${SECOND_MASTER_KEY},${short}` }),
      "MASTER_KEY_TOO_SHORT",
      [short, TEST_MASTER_KEY, SECOND_MASTER_KEY],
    );
    expect(error.message).toContain("OLD_MASTER_KEY");
  });

  test("surrounding whitespace of the current key is ignored", async () => {
    const padded = await Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: `  ${TEST_MASTER_KEY}\n` });
    const plain = await Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY });
    expect(padded.current.id).toBe(plain.current.id);
  });

  test("OLD_MASTER_KEY: comma-separated, whitespace trimmed, empty entries and duplicates dropped", async () => {
    const ring = await Keyring.fromEnv({
      MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY,
      OLD_MASTER_KEY: ` ${SECOND_MASTER_KEY} ,, \n${THIRD_MASTER_KEY},${SECOND_MASTER_KEY}, `,
    });
    expect(ring.previous.map((key) => key.id)).toEqual([expectedKeyId(SECOND_MASTER_KEY), expectedKeyId(THIRD_MASTER_KEY)]);
    expect(ring.previousIncludesCurrent).toBe(false);
    expect(ring.all.map((key) => key.id)).toEqual([ring.current.id, ...ring.previous.map((key) => key.id)]);
  });

  test("OLD_MASTER_KEY listing the current key sets previousIncludesCurrent and is not kept as previous", async () => {
    const ring = await Keyring.fromEnv({
      MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY,
      OLD_MASTER_KEY: `${TEST_MASTER_KEY},${SECOND_MASTER_KEY}`,
    });
    expect(ring.previousIncludesCurrent).toBe(true);
    expect(ring.previous.map((key) => key.id)).toEqual([expectedKeyId(SECOND_MASTER_KEY)]);
  });

  test("no OLD_MASTER_KEY (unset or empty): no previous keys", async () => {
    for (const old of [undefined, "", " , "]) {
      const ring = await Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: TEST_MASTER_KEY, OLD_MASTER_KEY: old });
      expect(ring.previous).toEqual([]);
      expect(ring.previousIncludesCurrent).toBe(false);
    }
  });
});

describe("rotation", () => {
  test("an old key still decrypts, flagged for re-encryption; re-encrypting moves it to the current key", async () => {
    const before = await Keyring.fromSecrets(TEST_MASTER_KEY);
    const sealedBefore = await encryptSecret(before, "sk-ant-rotation-test", CONTEXT);

    const during = await Keyring.fromSecrets(SECOND_MASTER_KEY, [TEST_MASTER_KEY]);
    expect(await decryptSecret(during, sealedBefore, CONTEXT)).toEqual({
      plaintext: "sk-ant-rotation-test",
      format: "v1",
      keyId: before.current.id,
      needsReencryption: true,
    });

    const sealedAfter = await encryptSecret(during, "sk-ant-rotation-test", CONTEXT);
    expect(sealedAfter.split(":")[2]).toBe(during.current.id);
    expect(await decryptSecret(during, sealedAfter, CONTEXT)).toMatchObject({
      keyId: during.current.id,
      needsReencryption: false,
    });

    // Once the old key is removed, only re-encrypted values decrypt.
    const after = await Keyring.fromSecrets(SECOND_MASTER_KEY);
    expect((await decryptSecret(after, sealedAfter, CONTEXT)).plaintext).toBe("sk-ant-rotation-test");
    const error = await expectCryptoError(decryptSecret(after, sealedBefore, CONTEXT), "UNKNOWN_KEY_ID", [
      TEST_MASTER_KEY,
      SECOND_MASTER_KEY,
      "sk-ant-rotation-test",
    ]);
    expect(error.message).toContain(before.current.id);
  });

  test("a key listed in several places decrypts its values (needsReencryption only for non-current keys)", async () => {
    const ring = await Keyring.fromSecrets(THIRD_MASTER_KEY, [SECOND_MASTER_KEY, TEST_MASTER_KEY]);
    for (const secret of ALL_SECRETS) {
      const sealed = await encryptSecret(await Keyring.fromSecrets(secret), "value", CONTEXT);
      const opened = await decryptSecret(ring, sealed, CONTEXT);
      expect(opened.plaintext).toBe("value");
      expect(opened.needsReencryption).toBe(secret !== THIRD_MASTER_KEY);
    }
  });
});

describe("keys and keyrings never show their secrets", () => {
  test("JSON.stringify, String() and inspect show ids only", async () => {
    const ring = await Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY]);
    const key = ring.current;
    expect(JSON.parse(JSON.stringify(key))).toEqual({ id: key.id });
    expect(JSON.parse(JSON.stringify(ring))).toEqual({ current: key.id, previous: [ring.previous[0]!.id] });
    expect(String(key)).toBe(`MasterKey(${key.id})`);
    expect(`${ring}`).toBe(`Keyring(current=${key.id}, previous=[${ring.previous[0]!.id}])`);
    for (const rendering of [inspect(key, { showHidden: true }), inspect(ring, { showHidden: true, depth: 5 }), Object.keys(key).join()]) {
      for (const secret of [TEST_MASTER_KEY, SECOND_MASTER_KEY]) expect(rendering).not.toContain(secret);
    }
  });

  test("an error wrapping a key does not reveal it", async () => {
    const ring = await Keyring.fromSecrets(TEST_MASTER_KEY);
    expectNoSecrets(new Error(`bad key ${ring.current} in ${ring}`), [TEST_MASTER_KEY]);
  });
});
