import { beforeAll, describe, expect, test } from "vitest";
import { decryptSecret, describeCiphertext, encryptSecret, type SecretContext } from "../../convex/lib/cipher";
import { base64Decode, base64Encode } from "../../convex/lib/encoding";
import { Keyring } from "../../convex/lib/keyring";
import { expectCryptoError } from "../helpers/cryptoErrors";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, TEST_ROOT_SALT, THIRD_MASTER_KEY } from "../helpers/keys";
import { encryptLegacy } from "../helpers/legacy";

const SALT = "project_legacy_test";
const CONTEXT: SecretContext = { salt: SALT, purpose: "connections/conn_legacy/credentials", version: 1 };
const PLAINTEXT = '{"apiKey":"plausible-legacy-secret-9f8e7d"}';

let keyring: Keyring;
let legacyValue: string;

beforeAll(async () => {
  keyring = Keyring.fromSecrets(TEST_MASTER_KEY, [], TEST_ROOT_SALT);
  legacyValue = await encryptLegacy(TEST_MASTER_KEY, SALT, PLAINTEXT);
});

describe("legacy Dashtray ciphertext", () => {
  test("is detected by shape", () => {
    expect(describeCiphertext(legacyValue)).toEqual({ format: "legacy" });
  });

  test("decrypts under the current key, flagged for re-encryption (no key id: legacy values carry none)", async () => {
    expect(await decryptSecret(keyring, legacyValue, CONTEXT)).toEqual({
      plaintext: PLAINTEXT,
      format: "legacy",
      keyId: null,
      needsReencryption: true,
    });
  });

  test("decrypts under an old key after rotation, trying each key once (one PBKDF2 per key tried)", async () => {
    const rotated = Keyring.fromSecrets(THIRD_MASTER_KEY, [SECOND_MASTER_KEY, TEST_MASTER_KEY], TEST_ROOT_SALT);
    expect(await decryptSecret(rotated, legacyValue, CONTEXT)).toEqual({
      plaintext: PLAINTEXT,
      format: "legacy",
      keyId: null,
      needsReencryption: true,
    });
    expect(rotated.pbkdf2Runs).toBe(3);
  });

  test.each([
    ["empty", ""],
    ["unicode", "🔑 鍵 e\u0301"],
  ])("%s plaintext", async (_name, plaintext) => {
    const value = await encryptLegacy(TEST_MASTER_KEY, SALT, plaintext);
    expect(await decryptSecret(keyring, value, CONTEXT)).toMatchObject({ plaintext, format: "legacy" });
  });

  test("re-encrypting gives v2 ciphertext under the current key", async () => {
    const rotated = Keyring.fromSecrets(SECOND_MASTER_KEY, [TEST_MASTER_KEY], TEST_ROOT_SALT);
    const { plaintext } = await decryptSecret(rotated, legacyValue, CONTEXT);
    const reencrypted = await encryptSecret(rotated, plaintext, CONTEXT);
    expect(await decryptSecret(rotated, reencrypted, CONTEXT)).toEqual({
      plaintext: PLAINTEXT,
      format: "v2",
      keyId: await rotated.current.keyId(),
      needsReencryption: false,
    });
  });

  const forbidden = () => [PLAINTEXT, TEST_MASTER_KEY, SECOND_MASTER_KEY, legacyValue];

  test("wrong salt: DECRYPTION_FAILED", async () => {
    await expectCryptoError(decryptSecret(keyring, legacyValue, { ...CONTEXT, salt: "project_other" }), "DECRYPTION_FAILED", forbidden());
  });

  test("master key not in the keyring: DECRYPTION_FAILED", async () => {
    const other = Keyring.fromSecrets(SECOND_MASTER_KEY, [THIRD_MASTER_KEY], TEST_ROOT_SALT);
    await expectCryptoError(decryptSecret(other, legacyValue, CONTEXT), "DECRYPTION_FAILED", forbidden());
  });

  test("a flipped byte: DECRYPTION_FAILED, even with allowPlaintext", async () => {
    const bytes = base64Decode(legacyValue)!;
    bytes[bytes.length - 1]! ^= 0x01;
    const tampered = base64Encode(bytes);
    await expectCryptoError(decryptSecret(keyring, tampered, CONTEXT), "DECRYPTION_FAILED", forbidden());
    await expectCryptoError(decryptSecret(keyring, tampered, CONTEXT, { allowPlaintext: true }), "DECRYPTION_FAILED", forbidden());
  });
});
