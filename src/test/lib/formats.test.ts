/**
 * Pinned formats: the project's cipher against committed ciphertexts of
 * every readable format (src/test/fixtures/format-vectors.json) and against
 * an independent node:crypto implementation written from docs/encryption.md
 * alone (src/test/independent/dashtrayFormats.ts). If the project's KDF
 * input, AAD or layout drifts from the document, these tests fail.
 *
 * PBKDF2 budget: one keyring per master-key set for the whole file, so the
 * project derives each v2 root once and each v1/legacy key once.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { decryptSecret, describeCiphertext, encryptSecret, MAX_STORED_VALUE_LENGTH } from "../../convex/lib/cipher";
import { Keyring } from "../../convex/lib/keyring";
import { expectCryptoError } from "../helpers/cryptoErrors";
import {
  base64url,
  base64urlDecodeStrict,
  decryptAny,
  encryptV1,
  encryptV2,
  encryptV2Bytes,
  IndependentFormatError,
  MAX_PLAINTEXT_BYTES,
  MAX_STORED_CHARS,
  v2KeyId,
  v2Root,
  type IndependentErrorCode,
  type IndependentKeys,
  type SecretContext,
} from "../independent/dashtrayFormats";
import { FORMAT_VECTORS } from "../independent/vectorFile";

const { current: CURRENT, old: OLD } = FORMAT_VECTORS.masterKeys;
const ROOT_SALT = base64urlDecodeStrict(FORMAT_VECTORS.rootSalt)!;
const INDEPENDENT_KEYS: IndependentKeys = { current: CURRENT, previous: [OLD], rootSalt: ROOT_SALT };

// The project's keyring over the vectors' master keys and root salt: current + old.
let keyring: Keyring;
beforeAll(() => {
  keyring = Keyring.fromSecrets(CURRENT, [OLD], FORMAT_VECTORS.rootSalt);
});

const CONTEXT: SecretContext = {
  salt: "jd7f2k9x4m1q8w3e6r5t0y2u",
  purpose: "connections/j57a8b9c0d1e2f3g4h5i6j7k/credentials",
  version: 9,
};

function independentCode(work: () => unknown): IndependentErrorCode | "OK" {
  try {
    work();
    return "OK";
  } catch (error) {
    if (error instanceof IndependentFormatError) return error.code;
    throw error;
  }
}

describe("committed vectors", () => {
  test.each(FORMAT_VECTORS.vectors)("the project decrypts $name", async (vector) => {
    const opened = await decryptSecret(keyring, vector.ciphertext, vector);
    expect(opened.plaintext).toBe(vector.plaintext);
    expect(opened.format).toBe(vector.format);
    expect(opened.needsReencryption).toBe(vector.format !== "v2" || vector.key === "old");
    expect(opened.keyId).toBe(vector.keyId);
    expect(describeCiphertext(vector.ciphertext)).toEqual(
      vector.format === "legacy" ? { format: "legacy" } : { format: vector.format, keyId: vector.keyId },
    );
  });

  test.each(FORMAT_VECTORS.vectors)("the independent implementation decrypts $name", (vector) => {
    expect(decryptAny(INDEPENDENT_KEYS, vector.ciphertext, vector).plaintext).toBe(vector.plaintext);
  });

  test("v2 vectors carry the key ids of the documented hierarchy", () => {
    for (const vector of FORMAT_VECTORS.vectors.filter((v) => v.format === "v2")) {
      const master = vector.key === "current" ? CURRENT : OLD;
      expect(vector.ciphertext.split(":")[2]).toBe(v2KeyId(v2Root(master, ROOT_SALT)));
    }
  });

  test("v2 vectors are bound to their version; v1 and legacy vectors are not", async () => {
    for (const vector of FORMAT_VECTORS.vectors.filter((v) => v.key === "current").slice(0, 12)) {
      const other = { ...vector, version: vector.version + 1 };
      if (vector.format === "v2") {
        await expectCryptoError(decryptSecret(keyring, vector.ciphertext, other), "DECRYPTION_FAILED");
      } else {
        expect((await decryptSecret(keyring, vector.ciphertext, other)).plaintext).toBe(vector.plaintext);
      }
    }
  });
});

const FRESH_PLAINTEXTS = [
  { label: "empty", plaintext: "" },
  { label: "JSON credentials", plaintext: JSON.stringify({ token: "ghp_fresh0123456789", workspace: "acme" }) },
  { label: "Unicode with NUL", plaintext: "ünïcødé 🔑 東京 \u0000" },
  { label: "65,536 ASCII bytes", plaintext: "k".repeat(MAX_PLAINTEXT_BYTES) },
  { label: "65,536 bytes of 2-byte characters", plaintext: "é".repeat(MAX_PLAINTEXT_BYTES / 2) },
];

describe("fresh output, both ways (v2)", () => {
  test.each(FRESH_PLAINTEXTS)("the independent implementation opens the project's encryptSecret ($label)", async ({ plaintext }) => {
    const value = await encryptSecret(keyring, plaintext, CONTEXT);
    expect(value).toHaveLength(38 + Math.ceil((4 * (new TextEncoder().encode(plaintext).length + 16)) / 3));
    expect(value.startsWith(`dtenc:v2:${v2KeyId(v2Root(CURRENT, ROOT_SALT))}:`)).toBe(true);
    expect(decryptAny(INDEPENDENT_KEYS, value, CONTEXT)).toEqual({ plaintext, format: "v2", keyIndex: 0 });
  });

  test.each(FRESH_PLAINTEXTS)("the project opens the independent implementation's v2 ($label, random IV)", async ({ plaintext }) => {
    const value = encryptV2(CURRENT, ROOT_SALT, CONTEXT, plaintext);
    const opened = await decryptSecret(keyring, value, CONTEXT);
    expect(opened).toMatchObject({ plaintext, format: "v2", needsReencryption: false });
  });

  test("the project opens fresh v2 under the old key and fresh v1, and says they need re-encryption", async () => {
    const underOld = encryptV2(OLD, ROOT_SALT, CONTEXT, "old key");
    expect(await decryptSecret(keyring, underOld, CONTEXT)).toMatchObject({
      plaintext: "old key",
      format: "v2",
      needsReencryption: true,
    });
    const v1 = encryptV1(CURRENT, CONTEXT, "v1 value");
    expect(await decryptSecret(keyring, v1, CONTEXT)).toMatchObject({
      plaintext: "v1 value",
      format: "v1",
      needsReencryption: true,
    });
  });

  test("two encryptions of one plaintext differ (fresh IVs)", async () => {
    const a = await encryptSecret(keyring, "same", CONTEXT);
    const b = await encryptSecret(keyring, "same", CONTEXT);
    expect(a.split(":")[3]).not.toBe(b.split(":")[3]);
  });
});

// --- Tampering --------------------------------------------------------------

/** Replaces part `index` (0-based, split on ":") of a dtenc value. */
function withPart(value: string, index: number, part: string): string {
  const parts = value.split(":");
  parts[index] = part;
  return parts.join(":");
}

/** Flips one bit of byte `byteIndex` (negative counts from the end) of base64url part `index`. */
function flipByte(value: string, index: number, byteIndex: number): string {
  const bytes = Buffer.from(base64urlDecodeStrict(value.split(":")[index]!)!);
  const at = byteIndex < 0 ? bytes.length + byteIndex : byteIndex;
  bytes[at] = bytes[at]! ^ 0x01;
  return withPart(value, index, base64url(bytes));
}

/** Truncates base64url part `index` to `newLength` bytes, or pads it with 0x41 bytes. */
function resizePart(value: string, index: number, newLength: number): string {
  const bytes = base64urlDecodeStrict(value.split(":")[index]!)!;
  const resized = Buffer.alloc(newLength, 0x41);
  bytes.subarray(0, Math.min(newLength, bytes.length)).forEach((byte, i) => (resized[i] = byte));
  return withPart(value, index, base64url(resized));
}

interface TamperCase {
  name: string;
  value: string;
  context: SecretContext;
  code: IndependentErrorCode;
}

const PLAINTEXT = JSON.stringify({ apiKey: "sk_live_tamper0123456789abcdef", accountId: "acct_9" });

function tamperCases(value: string, format: "v1" | "v2"): TamperCase[] {
  const sealedBytes = base64urlDecodeStrict(value.split(":")[4]!)!.length;
  const n = sealedBytes - 16;
  const at = (name: string, tampered: string, code: IndependentErrorCode): TamperCase => ({
    name,
    value: tampered,
    context: CONTEXT,
    code,
  });
  const otherKeyId = format === "v2" ? v2KeyId(v2Root(OLD, ROOT_SALT)) : "AAAAAAAAAAA";
  const cases: TamperCase[] = [
    at("prefix dtenc -> dtenx", value.replace(/^dtenc/, "dtenx"), "NOT_CIPHERTEXT"),
    at("prefix dropped", value.slice("dtenc:".length), "NOT_CIPHERTEXT"),
    at("version -> v3", withPart(value, 1, "v3"), "UNSUPPORTED_VERSION"),
    at("version -> V2 (case)", withPart(value, 1, format.toUpperCase()), "UNSUPPORTED_VERSION"),
    at("version -> v0", withPart(value, 1, "v0"), "UNSUPPORTED_VERSION"),
    at("version empty", withPart(value, 1, ""), "UNSUPPORTED_VERSION"),
    at(`key id -> the other configured key's ${format} id`, withPart(value, 2, otherKeyId), "DECRYPTION_FAILED"),
    at("key id, one bit flipped", flipByte(value, 2, 0), format === "v2" ? "UNKNOWN_KEY_ID" : "DECRYPTION_FAILED"),
    at("key id, non-zero unused bits", withPart(value, 2, value.split(":")[2]!.slice(0, 10) + "B"), "MALFORMED_CIPHERTEXT"),
    at("key id, 7 bytes", resizePart(value, 2, 7), "MALFORMED_CIPHERTEXT"),
    at("key id, 9 bytes", resizePart(value, 2, 9), "MALFORMED_CIPHERTEXT"),
    at("IV, first byte", flipByte(value, 3, 0), "DECRYPTION_FAILED"),
    at("IV, last byte", flipByte(value, 3, -1), "DECRYPTION_FAILED"),
    at("IV, 11 bytes", resizePart(value, 3, 11), "MALFORMED_CIPHERTEXT"),
    at("IV, 13 bytes", resizePart(value, 3, 13), "MALFORMED_CIPHERTEXT"),
    at("IV, padded", withPart(value, 3, `${value.split(":")[3]}==`), "MALFORMED_CIPHERTEXT"),
    at("ciphertext, first byte", flipByte(value, 4, 0), "DECRYPTION_FAILED"),
    at("ciphertext, middle byte", flipByte(value, 4, Math.floor(n / 2)), "DECRYPTION_FAILED"),
    at("ciphertext, last byte before the tag", flipByte(value, 4, n - 1), "DECRYPTION_FAILED"),
    at("tag, first byte", flipByte(value, 4, n), "DECRYPTION_FAILED"),
    at("tag, last byte", flipByte(value, 4, -1), "DECRYPTION_FAILED"),
    at("ciphertext, one byte dropped", resizePart(value, 4, sealedBytes - 1), "DECRYPTION_FAILED"),
    at("ciphertext, one byte appended", resizePart(value, 4, sealedBytes + 1), "DECRYPTION_FAILED"),
    at("ciphertext ‖ tag, 15 bytes", resizePart(value, 4, 15), "MALFORMED_CIPHERTEXT"),
    at("ciphertext ‖ tag, standard alphabet", withPart(value, 4, `+${value.split(":")[4]!.slice(1)}`), "MALFORMED_CIPHERTEXT"),
    at("a sixth part", `${value}:AAAA`, "MALFORMED_CIPHERTEXT"),
    at("the last part missing", value.split(":").slice(0, 4).join(":"), "MALFORMED_CIPHERTEXT"),
    { name: "context: another salt", value, context: { ...CONTEXT, salt: `${CONTEXT.salt}x` }, code: "DECRYPTION_FAILED" },
    {
      name: "context: another purpose",
      value,
      context: { ...CONTEXT, purpose: "aiKeys/jd7f2k9x4m1q8w3e6r5t0y2u/apiKey" },
      code: "DECRYPTION_FAILED",
    },
    { name: "context: empty salt", value, context: { ...CONTEXT, salt: "" }, code: "INVALID_ARGUMENT" },
    { name: "context: empty purpose", value, context: { ...CONTEXT, purpose: "" }, code: "INVALID_ARGUMENT" },
  ];
  if (format === "v2") {
    cases.push(
      { name: "context: the next version", value, context: { ...CONTEXT, version: CONTEXT.version + 1 }, code: "DECRYPTION_FAILED" },
      { name: "context: the previous version", value, context: { ...CONTEXT, version: CONTEXT.version - 1 }, code: "DECRYPTION_FAILED" },
      { name: "context: version 0", value, context: { ...CONTEXT, version: 0 }, code: "DECRYPTION_FAILED" },
      { name: "context: negative version", value, context: { ...CONTEXT, version: -9 }, code: "INVALID_ARGUMENT" },
      { name: "context: fractional version", value, context: { ...CONTEXT, version: 9.5 }, code: "INVALID_ARGUMENT" },
      at("format v2 -> v1 (same key id, v1 key and AAD)", withPart(value, 1, "v1"), "DECRYPTION_FAILED"),
    );
  } else {
    cases.push(at("format v1 -> v2 (v2 key ids differ)", withPart(value, 1, "v2"), "UNKNOWN_KEY_ID"));
  }
  return cases;
}

describe.each(["v2", "v1"] as const)("tampering with a %s value", (format) => {
  const value =
    format === "v2" ? encryptV2(CURRENT, ROOT_SALT, CONTEXT, PLAINTEXT) : encryptV1(CURRENT, CONTEXT, PLAINTEXT);

  test("the untouched value opens in both implementations", async () => {
    expect((await decryptSecret(keyring, value, CONTEXT)).plaintext).toBe(PLAINTEXT);
    expect(decryptAny(INDEPENDENT_KEYS, value, CONTEXT).plaintext).toBe(PLAINTEXT);
  });

  test.each(tamperCases(value, format))("$name fails with $code", async ({ value: tampered, context, code }) => {
    expect(tampered !== value || context !== CONTEXT).toBe(true);
    expect(independentCode(() => decryptAny(INDEPENDENT_KEYS, tampered, context))).toBe(code);
    await expectCryptoError(decryptSecret(keyring, tampered, context), code, [PLAINTEXT, CURRENT, OLD]);
  });
});

describe("tampering with a legacy value", () => {
  const vector = FORMAT_VECTORS.vectors.find((v) => v.format === "legacy" && v.plaintext.startsWith("{"))!;
  const bytes = Buffer.from(vector.ciphertext, "base64");
  const flipped = (at: number): string => {
    const copy = Buffer.from(bytes);
    copy[at] = copy[at]! ^ 0x01;
    return copy.toString("base64");
  };
  const cases: TamperCase[] = [
    { name: "IV, first byte", value: flipped(0), context: vector, code: "DECRYPTION_FAILED" },
    { name: "ciphertext, first byte", value: flipped(12), context: vector, code: "DECRYPTION_FAILED" },
    { name: "tag, last byte", value: flipped(bytes.length - 1), context: vector, code: "DECRYPTION_FAILED" },
    { name: "another salt", value: vector.ciphertext, context: { ...vector, salt: "another" }, code: "DECRYPTION_FAILED" },
    {
      name: "last character dropped (not canonical base64: plaintext-shaped)",
      value: vector.ciphertext.slice(0, -1),
      context: vector,
      code: "NOT_CIPHERTEXT",
    },
    {
      name: "27 bytes (shorter than IV + tag: plaintext-shaped)",
      value: bytes.subarray(0, 27).toString("base64"),
      context: vector,
      code: "NOT_CIPHERTEXT",
    },
  ];

  test.each(cases)("$name fails with $code", async ({ value, context, code }) => {
    expect(independentCode(() => decryptAny(INDEPENDENT_KEYS, value, context))).toBe(code);
    await expectCryptoError(decryptSecret(keyring, value, context), code, [vector.plaintext, CURRENT, OLD]);
  });

  test("legacy binds neither purpose nor version", async () => {
    const context = { ...vector, purpose: "aiKeys/x/apiKey", version: 99 };
    expect((await decryptSecret(keyring, vector.ciphertext, context)).plaintext).toBe(vector.plaintext);
  });
});

describe("v2 edge cases", () => {
  test("another deployment's root salt changes the key id: UNKNOWN_KEY_ID", async () => {
    const elsewhere = Keyring.fromSecrets(CURRENT, [], base64url(new Uint8Array(32).fill(7)));
    const value = encryptV2(CURRENT, ROOT_SALT, CONTEXT, PLAINTEXT);
    await expectCryptoError(decryptSecret(elsewhere, value, CONTEXT), "UNKNOWN_KEY_ID", [PLAINTEXT, CURRENT]);
  });

  test("an authentic v2 value whose plaintext is not UTF-8: DECRYPTION_FAILED", async () => {
    const value = encryptV2Bytes(CURRENT, ROOT_SALT, CONTEXT, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
    expect(independentCode(() => decryptAny(INDEPENDENT_KEYS, value, CONTEXT))).toBe("DECRYPTION_FAILED");
    await expectCryptoError(decryptSecret(keyring, value, CONTEXT), "DECRYPTION_FAILED");
  });

  test("sizes: the longest v2 value opens; one character more, or 5 MB, is VALUE_TOO_LARGE", async () => {
    const longest = encryptV2(CURRENT, ROOT_SALT, CONTEXT, "z".repeat(MAX_PLAINTEXT_BYTES));
    expect(longest).toHaveLength(MAX_STORED_CHARS);
    expect(MAX_STORED_VALUE_LENGTH).toBe(MAX_STORED_CHARS);
    expect((await decryptSecret(keyring, longest, CONTEXT)).plaintext).toHaveLength(MAX_PLAINTEXT_BYTES);
    for (const tooLong of [`${longest}A`, "A".repeat(5 * 1024 * 1024), `dtenc:v2:${"A".repeat(MAX_STORED_CHARS)}`]) {
      expect(independentCode(() => decryptAny(INDEPENDENT_KEYS, tooLong, CONTEXT))).toBe("VALUE_TOO_LARGE");
      await expectCryptoError(decryptSecret(keyring, tooLong, CONTEXT), "VALUE_TOO_LARGE");
    }
    await expectCryptoError(encryptSecret(keyring, "z".repeat(MAX_PLAINTEXT_BYTES + 1), CONTEXT), "VALUE_TOO_LARGE");
    const over = encryptV2Bytes(CURRENT, ROOT_SALT, CONTEXT, new Uint8Array(MAX_PLAINTEXT_BYTES + 1).fill(0x61));
    await expectCryptoError(decryptSecret(keyring, over, CONTEXT), "VALUE_TOO_LARGE");
  });
});

test("the whole file cost the project's keyring a handful of PBKDF2 runs", () => {
  // v2 roots of both keys (2); v1 and legacy keys of the vectors' salt under
  // both keys (4); the same for the "another salt" tamper cases (4). No v1 key
  // id is ever derived (v1 is read by trial).
  expect(keyring.pbkdf2Runs).toBe(10);
});
