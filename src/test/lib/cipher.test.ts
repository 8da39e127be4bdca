import { beforeAll, describe, expect, test, vi } from "vitest";
import {
  FORMAT_PREFIX,
  FORMAT_VERSION,
  IV_BYTES,
  MAX_PLAINTEXT_BYTES,
  MAX_STORED_VALUE_LENGTH,
  TAG_BYTES,
  v2CiphertextLength,
  decryptSecret,
  describeCiphertext,
  encryptSecret,
  type SecretContext,
} from "../../convex/lib/cipher";
import { base64Encode, base64UrlDecode, base64UrlEncode, utf8Encode } from "../../convex/lib/encoding";
import { KEY_ID_BYTES, Keyring } from "../../convex/lib/keyring";
import { expectCryptoError } from "../helpers/cryptoErrors";
import { OTHER_ROOT_SALT, SECOND_MASTER_KEY, TEST_MASTER_KEY, TEST_ROOT_SALT } from "../helpers/keys";
import { encryptV1, v1KeyId } from "../helpers/v1";
import { encryptLegacy } from "../helpers/legacy";

const CONTEXT: SecretContext = { salt: "project_cipher_test", purpose: "connections/conn_1/credentials", version: 3 };
const PLAINTEXT = '{"secretKey":"sk_live_51HxCipherTestSecret4242"}';

let keyring: Keyring;
let currentId: string;
let ciphertext: string;

beforeAll(async () => {
  keyring = Keyring.fromSecrets(TEST_MASTER_KEY, [], TEST_ROOT_SALT);
  currentId = await keyring.current.keyId();
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
  test("is dtenc:v2:<keyId>:<iv>:<ciphertext‖tag> in unpadded base64url", () => {
    const parts = ciphertext.split(":");
    expect(parts).toHaveLength(5);
    expect(parts[0]).toBe(FORMAT_PREFIX);
    expect(parts[1]).toBe(FORMAT_VERSION);
    expect(parts[2]).toBe(currentId);
    expect(ciphertext).toHaveLength(v2CiphertextLength(utf8Encode(PLAINTEXT).length));
    for (const part of parts.slice(2)) expect(part).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(base64UrlDecode(parts[2]!)).toHaveLength(KEY_ID_BYTES);
    expect(base64UrlDecode(parts[3]!)).toHaveLength(IV_BYTES);
    expect(base64UrlDecode(parts[4]!)).toHaveLength(utf8Encode(PLAINTEXT).length + TAG_BYTES);
    expect(ciphertext).not.toContain("sk_live");
  });

  test("describeCiphertext classifies without a key", async () => {
    expect(describeCiphertext(ciphertext)).toEqual({ format: "v2", keyId: currentId });
    const v1 = await encryptV1(TEST_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, PLAINTEXT);
    expect(describeCiphertext(v1)).toEqual({ format: "v1", keyId: await v1KeyId(TEST_MASTER_KEY) });
    expect(describeCiphertext(base64Encode(new Uint8Array(IV_BYTES + TAG_BYTES)))).toEqual({ format: "legacy" });
    // Canonical base64 too short to hold an IV and a tag is not legacy ciphertext.
    expect(describeCiphertext(base64Encode(new Uint8Array(IV_BYTES + TAG_BYTES - 1)))).toEqual({ format: "plaintext" });
    expect(describeCiphertext(PLAINTEXT)).toEqual({ format: "plaintext" });
    expect(describeCiphertext("")).toEqual({ format: "plaintext" });
    // Starts like the dtenc format but is not readable: never v1/v2, never plaintext.
    expect(describeCiphertext(ciphertext.replace(":v2:", ":v3:"))).toEqual({ format: "invalid", code: "UNSUPPORTED_VERSION" });
    expect(describeCiphertext(`dtenc:v2:${currentId}:x`)).toEqual({ format: "invalid", code: "MALFORMED_CIPHERTEXT" });
    expect(describeCiphertext(`dtenc:v1:${currentId}:x`)).toEqual({ format: "invalid", code: "MALFORMED_CIPHERTEXT" });
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
    expect(opened).toEqual({ plaintext, format: "v2", keyId: currentId, needsReencryption: false });
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
    const rotated = Keyring.fromSecrets(SECOND_MASTER_KEY, [TEST_MASTER_KEY], TEST_ROOT_SALT);
    const parts = ciphertext.split(":");
    parts[2] = await rotated.current.keyId();
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
    const other = Keyring.fromSecrets(SECOND_MASTER_KEY, [], TEST_ROOT_SALT);
    const error = await expectCryptoError(decryptSecret(other, ciphertext, CONTEXT), "UNKNOWN_KEY_ID", secrets());
    expect(error.message).toContain(currentId);
    expect(error.message).not.toContain(await other.current.keyId());
  });

  test("unknown version: UNSUPPORTED_VERSION", async () => {
    const v3 = ciphertext.replace(`${FORMAT_PREFIX}:${FORMAT_VERSION}:`, `${FORMAT_PREFIX}:v3:`);
    await expectCryptoError(decryptSecret(keyring, v3, CONTEXT), "UNSUPPORTED_VERSION", secrets(v3));
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

describe("secret version (v2 AAD)", () => {
  test("another version: DECRYPTION_FAILED (a value the row held before its secret was replaced)", async () => {
    for (const version of [0, 2, 4, 30]) {
      await expectCryptoError(decryptSecret(keyring, ciphertext, { ...CONTEXT, version }), "DECRYPTION_FAILED", secrets());
    }
  });

  test("version 0 and large safe integers round-trip", async () => {
    for (const version of [0, Number.MAX_SAFE_INTEGER]) {
      const sealed = await encryptSecret(keyring, "v", { ...CONTEXT, version });
      expect((await decryptSecret(keyring, sealed, { ...CONTEXT, version })).plaintext).toBe("v");
    }
  });

  test.each([-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1, Infinity])("version %s: INVALID_ARGUMENT", async (version) => {
    await expectCryptoError(encryptSecret(keyring, PLAINTEXT, { ...CONTEXT, version }), "INVALID_ARGUMENT", secrets());
    await expectCryptoError(decryptSecret(keyring, ciphertext, { ...CONTEXT, version }), "INVALID_ARGUMENT", secrets());
  });
});

describe("root salt", () => {
  test("the same master key under another deployment's root salt: another key id, UNKNOWN_KEY_ID", async () => {
    const elsewhere = Keyring.fromSecrets(TEST_MASTER_KEY, [], OTHER_ROOT_SALT);
    expect(await elsewhere.current.keyId()).not.toBe(currentId);
    await expectCryptoError(decryptSecret(elsewhere, ciphertext, CONTEXT), "UNKNOWN_KEY_ID", secrets());
  });

  test.each([
    ["too short", TEST_ROOT_SALT.slice(0, -2)],
    ["padded", `${TEST_ROOT_SALT}=`],
    ["standard base64", `+${TEST_ROOT_SALT.slice(1)}`],
    ["empty", ""],
  ])("%s: ROOT_SALT_INVALID when the keyring loads", (_name, rootSalt) => {
    expect(() => Keyring.fromSecrets(TEST_MASTER_KEY, [], rootSalt)).toThrow(
      expect.objectContaining({ code: "ROOT_SALT_INVALID" }),
    );
  });

  test("no root salt yet (null): v2 needs one (ROOT_SALT_INVALID), v1 still reads", async () => {
    const noSalt = Keyring.fromSecrets(TEST_MASTER_KEY, [], null);
    await expectCryptoError(encryptSecret(noSalt, PLAINTEXT, CONTEXT), "ROOT_SALT_INVALID", secrets());
    await expectCryptoError(decryptSecret(noSalt, ciphertext, CONTEXT), "ROOT_SALT_INVALID", secrets());
    const v1 = await encryptV1(TEST_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, PLAINTEXT);
    expect((await decryptSecret(noSalt, v1, CONTEXT)).plaintext).toBe(PLAINTEXT);
    expect(noSalt.pbkdf2Runs).toBe(1);
  });
});

describe("format v1 (read only)", () => {
  test("decrypts under the current key, needing re-encryption, keyId = its header's v1 id", async () => {
    const v1 = await encryptV1(TEST_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, PLAINTEXT);
    const ring = Keyring.fromSecrets(TEST_MASTER_KEY, [], TEST_ROOT_SALT);
    expect(await decryptSecret(ring, v1, CONTEXT)).toEqual({
      plaintext: PLAINTEXT,
      format: "v1",
      keyId: await v1KeyId(TEST_MASTER_KEY),
      needsReencryption: true,
    });
    // One PBKDF2 (the v1 key of this salt): no key id derived, no v2 root.
    expect(ring.pbkdf2Runs).toBe(1);
  });

  test("the version is not bound by v1; the purpose is", async () => {
    const v1 = await encryptV1(TEST_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, PLAINTEXT);
    expect((await decryptSecret(keyring, v1, { ...CONTEXT, version: 0 })).plaintext).toBe(PLAINTEXT);
    await expectCryptoError(decryptSecret(keyring, v1, { ...CONTEXT, purpose: "aiKeys/u/apiKey" }), "DECRYPTION_FAILED", [PLAINTEXT, v1]);
  });

  test("under an old key: the current key is tried first unless hinted; under no key: DECRYPTION_FAILED", async () => {
    const v1 = await encryptV1(SECOND_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, PLAINTEXT);
    const rotating = Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY], TEST_ROOT_SALT);
    expect((await decryptSecret(rotating, v1, CONTEXT)).plaintext).toBe(PLAINTEXT);
    expect(rotating.pbkdf2Runs).toBe(2);
    const hinted = Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY], TEST_ROOT_SALT);
    expect((await decryptSecret(hinted, v1, CONTEXT, { keyHint: 1 })).plaintext).toBe(PLAINTEXT);
    expect(hinted.pbkdf2Runs).toBe(1);
    await expectCryptoError(decryptSecret(keyring, v1, CONTEXT), "DECRYPTION_FAILED", [PLAINTEXT, v1, SECOND_MASTER_KEY]);
  });
});

describe("sizes: every input size gets a typed error", () => {
  const FIVE_MB = 5 * 1024 * 1024;

  test("the longest stored value is the v2 ciphertext of MAX_PLAINTEXT_BYTES", async () => {
    const largest = await encryptSecret(keyring, "x".repeat(MAX_PLAINTEXT_BYTES), CONTEXT);
    expect(largest).toHaveLength(MAX_STORED_VALUE_LENGTH);
    expect(MAX_STORED_VALUE_LENGTH).toBe(87_441);
    expect((await decryptSecret(keyring, largest, CONTEXT)).plaintext).toHaveLength(MAX_PLAINTEXT_BYTES);
    expect(describeCiphertext(largest)).toEqual({ format: "v2", keyId: currentId });
  });

  test("encrypting one byte more than MAX_PLAINTEXT_BYTES, or 5 MB: VALUE_TOO_LARGE", async () => {
    await expectCryptoError(encryptSecret(keyring, "x".repeat(MAX_PLAINTEXT_BYTES + 1), CONTEXT), "VALUE_TOO_LARGE");
    // 32,769 two-byte characters: under the limit in UTF-16 code units, over it in UTF-8 bytes.
    await expectCryptoError(encryptSecret(keyring, "é".repeat(MAX_PLAINTEXT_BYTES / 2 + 1), CONTEXT), "VALUE_TOO_LARGE");
    await expectCryptoError(encryptSecret(keyring, "x".repeat(FIVE_MB), CONTEXT), "VALUE_TOO_LARGE");
  });

  test.each([
    ["dtenc-shaped", () => `dtenc:v2:${currentId}:${"A".repeat(16)}:${"A".repeat(FIVE_MB)}`],
    ["base64 (legacy-shaped)", () => "A".repeat(FIVE_MB)],
    ["padded base64", () => `${"A".repeat(FIVE_MB - 2)}==`],
    ["plaintext-shaped", () => "{".repeat(FIVE_MB)],
    ["one character too long", () => "A".repeat(MAX_STORED_VALUE_LENGTH + 1)],
  ])("a stored %s value of 5 MB: VALUE_TOO_LARGE from decryptSecret and describeCiphertext", async (_name, make) => {
    const value = make();
    const before = keyring.pbkdf2Runs;
    await expectCryptoError(decryptSecret(keyring, value, CONTEXT), "VALUE_TOO_LARGE");
    await expectCryptoError(decryptSecret(keyring, value, CONTEXT, { allowPlaintext: true }), "VALUE_TOO_LARGE");
    expect(describeCiphertext(value)).toEqual({ format: "invalid", code: "VALUE_TOO_LARGE" });
    expect(keyring.pbkdf2Runs).toBe(before);
  });
});

describe("one keyring per call: derivations memoised in the instance", () => {
  /** Counts PBKDF2 runs at crypto.subtle (deriveBits and deriveKey), restoring the originals after `work`. */
  async function countPbkdf2(work: () => Promise<unknown>): Promise<number> {
    const subtle = crypto.subtle;
    const deriveBits = subtle.deriveBits.bind(subtle);
    const deriveKey = subtle.deriveKey.bind(subtle);
    let runs = 0;
    const isPbkdf2 = (algorithm: unknown) =>
      typeof algorithm === "object" && algorithm !== null && (algorithm as { name?: unknown }).name === "PBKDF2";
    const spies = [
      vi.spyOn(subtle, "deriveBits").mockImplementation((algorithm, key, length) => {
        if (isPbkdf2(algorithm)) runs++;
        return deriveBits(algorithm, key, length);
      }),
      vi.spyOn(subtle, "deriveKey").mockImplementation((algorithm, key, derived, extractable, usages) => {
        if (isPbkdf2(algorithm)) runs++;
        return deriveKey(algorithm, key, derived, extractable, usages);
      }),
    ];
    try {
      await work();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    return runs;
  }

  test("loading derives nothing; encrypting for 3 salts (concurrently, then again) costs 1 PBKDF2, key id included", async () => {
    let ring: Keyring | undefined;
    const runs = await countPbkdf2(async () => {
      ring = Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY], TEST_ROOT_SALT);
      expect(ring.pbkdf2Runs).toBe(0);
      const salts = ["project_a", "project_b", "project_c"];
      const sealed = await Promise.all(salts.map((salt) => encryptSecret(ring!, "s", { ...CONTEXT, salt })));
      await Promise.all(salts.map((salt, i) => decryptSecret(ring!, sealed[i]!, { ...CONTEXT, salt })));
      await ring.current.keyId();
    });
    expect(runs).toBe(1);
    expect(ring?.pbkdf2Runs).toBe(1);
  });

  test("a value under old key #1 costs the current root and old key #1's; a hint saves the current one", async () => {
    const sealed = await encryptSecret(Keyring.fromSecrets(SECOND_MASTER_KEY, [], TEST_ROOT_SALT), "old", CONTEXT);
    const ring = Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY, "third-master-key-never-derived-000000"], TEST_ROOT_SALT);
    expect(await countPbkdf2(() => decryptSecret(ring, sealed, CONTEXT))).toBe(2);
    expect(await decryptSecret(ring, sealed, CONTEXT)).toMatchObject({ plaintext: "old", needsReencryption: true });
    expect(ring.pbkdf2Runs).toBe(2);
    const hinted = Keyring.fromSecrets(TEST_MASTER_KEY, [SECOND_MASTER_KEY], TEST_ROOT_SALT);
    expect(await countPbkdf2(() => decryptSecret(hinted, sealed, CONTEXT, { keyHint: 1 }))).toBe(1);
  });

  test("a failed derivation is not memoised: the next request retries", async () => {
    const ring = Keyring.fromSecrets(TEST_MASTER_KEY, [], TEST_ROOT_SALT);
    const spy = vi.spyOn(crypto.subtle, "deriveBits").mockRejectedValueOnce(new Error("transient"));
    try {
      await expect(ring.current.keyId()).rejects.toThrow("transient");
    } finally {
      spy.mockRestore();
    }
    expect(await ring.current.keyId()).toBe(currentId);
  });
});

describe("requireVersionBinding (set by callers when the row's secret version is above 0)", () => {
  test("refuses v1 and original-format values, which bind no version; v2 at its version still opens", async () => {
    const v1Value = await encryptV1(TEST_MASTER_KEY, CONTEXT.salt, CONTEXT.purpose, PLAINTEXT);
    expect((await decryptSecret(keyring, v1Value, CONTEXT)).plaintext).toBe(PLAINTEXT);
    await expectCryptoError(decryptSecret(keyring, v1Value, CONTEXT, { requireVersionBinding: true }), "DECRYPTION_FAILED", [PLAINTEXT]);
    const legacyValue = await encryptLegacy(TEST_MASTER_KEY, CONTEXT.salt, PLAINTEXT);
    await expectCryptoError(decryptSecret(keyring, legacyValue, CONTEXT, { requireVersionBinding: true }), "DECRYPTION_FAILED", [PLAINTEXT]);
    expect((await decryptSecret(keyring, ciphertext, CONTEXT, { requireVersionBinding: true })).plaintext).toBe(PLAINTEXT);
  });
});
