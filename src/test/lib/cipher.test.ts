import { beforeAll, describe, expect, test } from "vitest";
import {
  FORMAT_PREFIX,
  FORMAT_VERSION,
  IV_BYTES,
  TAG_BYTES,
  decryptSecret,
  describeCiphertext,
  encryptSecret,
  type SecretContext,
} from "../../convex/lib/cipher";
import { base64Encode, base64UrlDecode, base64UrlEncode, utf8Encode } from "../../convex/lib/encoding";
import { KEY_ID_BYTES, Keyring } from "../../convex/lib/keyring";
import { expectCryptoError } from "../helpers/cryptoErrors";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY } from "../helpers/keys";

const CONTEXT: SecretContext = { salt: "project_cipher_test", purpose: "connections/conn_1/credentials" };
const PLAINTEXT = '{"secretKey":"sk_live_51HxCipherTestSecret4242"}';

let keyring: Keyring;
let ciphertext: string;

beforeAll(async () => {
  keyring = await Keyring.fromSecrets(TEST_MASTER_KEY);
  ciphertext = await encryptSecret(keyring, PLAINTEXT, CONTEXT);
});

/** Everything an error message must never show for the shared ciphertext. */
function secrets(value = ciphertext): string[] {
  const [, , , iv = "", sealed = ""] = value.split(":");
  return [PLAINTEXT, "sk_live_51HxCipherTestSecret4242", TEST_MASTER_KEY, SECOND_MASTER_KEY, value, iv, sealed];
}

/** The ciphertext with one bit flipped in byte `index` of part `part` (2 = key id, 3 = IV, 4 = ciphertext‖tag). */
function flipBit(value: string, part: 2 | 3 | 4, index: number): string {
  const parts = value.split(":");
  const bytes = base64UrlDecode(parts[part]!)!;
  const position = index < 0 ? bytes.length + index : index;
  bytes[position]! ^= 0x01;
  parts[part] = base64UrlEncode(bytes);
  return parts.join(":");
}

/** The ciphertext with part `part` replaced by its first `length` bytes. */
function truncatePart(value: string, part: 3 | 4, length: number): string {
  const parts = value.split(":");
  parts[part] = base64UrlEncode(base64UrlDecode(parts[part]!)!.subarray(0, length));
  return parts.join(":");
}

describe("format", () => {
  test("is dtenc:v1:<keyId>:<iv>:<ciphertext‖tag> in unpadded base64url", () => {
    const parts = ciphertext.split(":");
    expect(parts).toHaveLength(5);
    expect(parts[0]).toBe(FORMAT_PREFIX);
    expect(parts[1]).toBe(FORMAT_VERSION);
    expect(parts[2]).toBe(keyring.current.id);
    for (const part of parts.slice(2)) expect(part).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(base64UrlDecode(parts[2]!)).toHaveLength(KEY_ID_BYTES);
    expect(base64UrlDecode(parts[3]!)).toHaveLength(IV_BYTES);
    expect(base64UrlDecode(parts[4]!)).toHaveLength(utf8Encode(PLAINTEXT).length + TAG_BYTES);
    expect(ciphertext).not.toContain("sk_live");
  });

  test("describeCiphertext classifies without a key", async () => {
    expect(describeCiphertext(ciphertext)).toEqual({ format: "v1", keyId: keyring.current.id });
    expect(describeCiphertext(base64Encode(new Uint8Array(IV_BYTES + TAG_BYTES)))).toEqual({ format: "legacy" });
    // Canonical base64 too short to hold an IV and a tag is not legacy ciphertext.
    expect(describeCiphertext(base64Encode(new Uint8Array(IV_BYTES + TAG_BYTES - 1)))).toEqual({ format: "plaintext" });
    expect(describeCiphertext(PLAINTEXT)).toEqual({ format: "plaintext" });
    expect(describeCiphertext("")).toEqual({ format: "plaintext" });
    // Starts like the current format but is not: never "v1", never plaintext.
    expect(describeCiphertext(ciphertext.replace(":v1:", ":v2:"))).toEqual({ format: "invalid", code: "UNSUPPORTED_VERSION" });
    expect(describeCiphertext(`dtenc:v1:${keyring.current.id}:x`)).toEqual({ format: "invalid", code: "MALFORMED_CIPHERTEXT" });
    const [prefix, version, keyId, iv, sealed] = ciphertext.split(":");
    const shortIv = [prefix, version, keyId, iv!.slice(0, -4), sealed].join(":");
    expect(describeCiphertext(shortIv)).toEqual({ format: "invalid", code: "MALFORMED_CIPHERTEXT" });
    expect(describeCiphertext("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789")).toEqual({ format: "plaintext" });
  });
});

describe("round trips", () => {
  const cases: [string, string][] = [
    ["empty string", ""],
    ["emoji", "🔐🗝️👩🏽‍💻 keys"],
    ["CJK", "秘密の鍵と암호화 키와 密钥"],
    ["combining marks", "e\u0301 a\u0308 n\u0303 Z\u0335\u0321\u0359a\u0334\u0317l\u0338go"],
    ["JSON credentials", PLAINTEXT],
    ["64 KiB", "0123456789abcdef".repeat(4096)],
  ];

  test.each(cases)("%s", async (_name, plaintext) => {
    const sealed = await encryptSecret(keyring, plaintext, CONTEXT);
    const opened = await decryptSecret(keyring, sealed, CONTEXT);
    expect(opened).toEqual({ plaintext, format: "v1", keyId: keyring.current.id, needsReencryption: false });
  });

  test("64 KiB is really 64 KiB of UTF-8", () => {
    expect(utf8Encode(cases[5]![1])).toHaveLength(64 * 1024);
  });

  test("2,000 encryptions of one plaintext use 2,000 distinct IVs and ciphertexts", async () => {
    const sealed = await Promise.all(Array.from({ length: 2000 }, () => encryptSecret(keyring, "same", CONTEXT)));
    expect(new Set(sealed).size).toBe(2000);
    expect(new Set(sealed.map((value) => value.split(":")[3])).size).toBe(2000);
    expect(new Set(sealed.map((value) => value.split(":")[4])).size).toBe(2000);
    for (const value of sealed.slice(0, 20)) {
      expect((await decryptSecret(keyring, value, CONTEXT)).plaintext).toBe("same");
    }
  });
});

describe("tampering and misuse fail with a typed error", () => {
  test("flipped key id byte: UNKNOWN_KEY_ID", async () => {
    await expectCryptoError(decryptSecret(keyring, flipBit(ciphertext, 2, 0), CONTEXT), "UNKNOWN_KEY_ID", secrets());
  });

  test("key id swapped for another configured key: DECRYPTION_FAILED (the id is authenticated)", async () => {
    const rotated = await Keyring.fromSecrets(SECOND_MASTER_KEY, [TEST_MASTER_KEY]);
    const parts = ciphertext.split(":");
    parts[2] = rotated.current.id;
    await expectCryptoError(decryptSecret(rotated, parts.join(":"), CONTEXT), "DECRYPTION_FAILED", secrets());
  });

  test.each([
    ["IV", 3, 0],
    ["ciphertext body", 4, 0],
    ["tag", 4, -1],
    ["first tag byte", 4, -TAG_BYTES],
  ] as const)("flipped %s byte: DECRYPTION_FAILED", async (_region, part, index) => {
    await expectCryptoError(decryptSecret(keyring, flipBit(ciphertext, part, index), CONTEXT), "DECRYPTION_FAILED", secrets());
  });

  test("truncation", async () => {
    const sealedLength = base64UrlDecode(ciphertext.split(":")[4]!)!.length;
    // One byte short: still long enough to parse, but the tag no longer verifies.
    await expectCryptoError(
      decryptSecret(keyring, truncatePart(ciphertext, 4, sealedLength - 1), CONTEXT),
      "DECRYPTION_FAILED",
      secrets(),
    );
    // Shorter than a tag, a short IV, a missing part, a cut inside a base64 group.
    await expectCryptoError(decryptSecret(keyring, truncatePart(ciphertext, 4, TAG_BYTES - 1), CONTEXT), "MALFORMED_CIPHERTEXT", secrets());
    await expectCryptoError(decryptSecret(keyring, truncatePart(ciphertext, 3, IV_BYTES - 1), CONTEXT), "MALFORMED_CIPHERTEXT", secrets());
    await expectCryptoError(
      decryptSecret(keyring, ciphertext.split(":").slice(0, 4).join(":"), CONTEXT),
      "MALFORMED_CIPHERTEXT",
      secrets(),
    );
    const cutInsideGroup = ciphertext.slice(0, ciphertext.length - ((ciphertext.split(":")[4]!.length % 4) + 3));
    await expectCryptoError(decryptSecret(keyring, cutInsideGroup, CONTEXT), "MALFORMED_CIPHERTEXT", secrets());
  });

  test("extra parts: MALFORMED_CIPHERTEXT", async () => {
    await expectCryptoError(decryptSecret(keyring, `${ciphertext}:AAAA`, CONTEXT), "MALFORMED_CIPHERTEXT", secrets());
    await expectCryptoError(decryptSecret(keyring, `${ciphertext}:`, CONTEXT), "MALFORMED_CIPHERTEXT", secrets());
  });

  test("wrong salt: DECRYPTION_FAILED", async () => {
    await expectCryptoError(
      decryptSecret(keyring, ciphertext, { ...CONTEXT, salt: "project_other" }),
      "DECRYPTION_FAILED",
      secrets(),
    );
  });

  test("wrong purpose (AAD): DECRYPTION_FAILED", async () => {
    await expectCryptoError(
      decryptSecret(keyring, ciphertext, { ...CONTEXT, purpose: "connections/conn_2/credentials" }),
      "DECRYPTION_FAILED",
      secrets(),
    );
  });

  test("wrong master key: UNKNOWN_KEY_ID naming the key id", async () => {
    const other = await Keyring.fromSecrets(SECOND_MASTER_KEY);
    const error = await expectCryptoError(decryptSecret(other, ciphertext, CONTEXT), "UNKNOWN_KEY_ID", secrets());
    expect(error.message).toContain(keyring.current.id);
    expect(error.message).not.toContain(other.current.id);
  });

  test("unknown version: UNSUPPORTED_VERSION", async () => {
    const v2 = ciphertext.replace(`${FORMAT_PREFIX}:${FORMAT_VERSION}:`, `${FORMAT_PREFIX}:v2:`);
    await expectCryptoError(decryptSecret(keyring, v2, CONTEXT), "UNSUPPORTED_VERSION", secrets(v2));
    await expectCryptoError(decryptSecret(keyring, `${FORMAT_PREFIX}:`, CONTEXT), "UNSUPPORTED_VERSION");
  });

  test("bad base64url: MALFORMED_CIPHERTEXT", async () => {
    const parts = ciphertext.split(":");
    const withPart = (index: number, text: string) => parts.map((part, i) => (i === index ? text : part)).join(":");
    for (const value of [
      withPart(3, `${parts[3]!.slice(0, -1)}!`), // not in the alphabet
      withPart(3, `${parts[3]!.slice(0, -1)}+`), // standard base64, not base64url
      withPart(4, `${parts[4]}=`), // padding
      withPart(2, `${parts[2]!.slice(0, -1)}B`), // non-canonical: nonzero unused bits in the last character
    ]) {
      await expectCryptoError(decryptSecret(keyring, value, CONTEXT), "MALFORMED_CIPHERTEXT", secrets());
    }
  });

  test("garbage", async () => {
    await expectCryptoError(decryptSecret(keyring, `${FORMAT_PREFIX}:${FORMAT_VERSION}::::`, CONTEXT), "MALFORMED_CIPHERTEXT");
    await expectCryptoError(decryptSecret(keyring, `${FORMAT_PREFIX}:${FORMAT_VERSION}:::`, CONTEXT), "MALFORMED_CIPHERTEXT");
    await expectCryptoError(decryptSecret(keyring, "\u0000\uffff garbage \ud83d", CONTEXT), "NOT_CIPHERTEXT");
    // Random bytes in base64 look like legacy ciphertext and fail to authenticate.
    const random = base64Encode(crypto.getRandomValues(new Uint8Array(64)));
    await expectCryptoError(decryptSecret(keyring, random, CONTEXT), "DECRYPTION_FAILED", [random]);
  });

  test("empty salt or purpose: INVALID_ARGUMENT", async () => {
    await expectCryptoError(encryptSecret(keyring, PLAINTEXT, { ...CONTEXT, salt: "" }), "INVALID_ARGUMENT", secrets());
    await expectCryptoError(encryptSecret(keyring, PLAINTEXT, { ...CONTEXT, purpose: "" }), "INVALID_ARGUMENT", secrets());
    await expectCryptoError(decryptSecret(keyring, ciphertext, { ...CONTEXT, salt: "" }), "INVALID_ARGUMENT", secrets());
    await expectCryptoError(decryptSecret(keyring, ciphertext, { ...CONTEXT, purpose: "" }), "INVALID_ARGUMENT", secrets());
  });
});

describe("plaintext fallback", () => {
  test("a value that is not ciphertext is NOT_CIPHERTEXT by default", async () => {
    await expectCryptoError(decryptSecret(keyring, PLAINTEXT, CONTEXT), "NOT_CIPHERTEXT", secrets());
  });

  test("with allowPlaintext it is returned as format plaintext, needing re-encryption", async () => {
    expect(await decryptSecret(keyring, PLAINTEXT, CONTEXT, { allowPlaintext: true })).toEqual({
      plaintext: PLAINTEXT,
      format: "plaintext",
      keyId: null,
      needsReencryption: true,
    });
  });

  test("allowPlaintext never turns ciphertext that fails into plaintext", async () => {
    const options = { allowPlaintext: true };
    await expectCryptoError(decryptSecret(keyring, flipBit(ciphertext, 4, -1), CONTEXT, options), "DECRYPTION_FAILED", secrets());
    await expectCryptoError(decryptSecret(keyring, `${ciphertext}:AAAA`, CONTEXT, options), "MALFORMED_CIPHERTEXT", secrets());
    const random = base64Encode(crypto.getRandomValues(new Uint8Array(64)));
    await expectCryptoError(decryptSecret(keyring, random, CONTEXT, options), "DECRYPTION_FAILED", [random]);
  });
});
