/**
 * Published vectors for the key derivations of format v2, run on WebCrypto
 * the way docs/encryption.md says the project calls it: PBKDF2 with
 * deriveBits, the root imported as a non-extractable HKDF key, HKDF-SHA256
 * with deriveBits and with deriveKey to a non-extractable AES-256-GCM key.
 * Where the vector fits the project's helpers (lib/kdf.ts: HKDF with the
 * empty salt v2 uses, PBKDF2), they are run through them too.
 * (vectors.test.ts covers AES-256-GCM and the RFC 6070-style PBKDF2 vectors.)
 */
import { createCipheriv } from "node:crypto";
import { describe, expect, test } from "vitest";
import { hkdfAesGcmKey, hkdfBytes, importHkdfKey, pbkdf2Sha256 } from "../../convex/lib/kdf";

const hex = (text: string): Uint8Array<ArrayBuffer> => new Uint8Array(Buffer.from(text, "hex"));
const toHex = (bytes: ArrayBuffer | Uint8Array): string => Buffer.from(new Uint8Array(bytes)).toString("hex");
const range = (from: number, to: number): Uint8Array<ArrayBuffer> =>
  new Uint8Array(Array.from({ length: to - from + 1 }, (_, i) => from + i));

// RFC 5869 Appendix A, test cases 1-3 (HKDF-SHA256).
const HKDF_VECTORS = [
  {
    name: "test case 1: basic",
    ikm: new Uint8Array(22).fill(0x0b),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  },
  {
    name: "test case 2: longer inputs and outputs",
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    okm:
      "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c" +
      "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71" +
      "cc30c58179ec3e87c14c01d5c1f3434f1d87",
  },
  {
    name: "test case 3: zero-length salt and info (the salt v2 uses)",
    ikm: new Uint8Array(22).fill(0x0b),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
  },
];

async function hkdfKey(ikm: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits", "deriveKey"]);
}

describe("HKDF-SHA256 (crypto.subtle, non-extractable HKDF key)", () => {
  test.each(HKDF_VECTORS)("$name: deriveBits", async (vector) => {
    const key = await hkdfKey(vector.ikm);
    const bits = await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: vector.salt, info: vector.info },
      key,
      (vector.okm.length / 2) * 8,
    );
    expect(toHex(bits)).toBe(vector.okm);
  });

  test.each(HKDF_VECTORS)("$name: deriveKey to AES-256-GCM uses the first 32 bytes", async (vector) => {
    const key = await hkdfKey(vector.ikm);
    const aesKey = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: vector.salt, info: vector.info },
      key,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt"],
    );
    expect(aesKey.extractable).toBe(false);
    const iv = new Uint8Array(12).fill(7);
    const aad = new TextEncoder().encode("aad");
    const plaintext = new TextEncoder().encode("known plaintext");
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, aesKey, plaintext);
    const cipher = createCipheriv("aes-256-gcm", hex(vector.okm.slice(0, 64)), iv);
    cipher.setAAD(aad);
    const expected = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    expect(toHex(sealed)).toBe(expected.toString("hex"));
  });
});

describe("HKDF-SHA256 through lib/kdf.ts (RFC 5869 test case 3: the empty salt v2 uses)", () => {
  const vector = HKDF_VECTORS[2]!;

  test("importHkdfKey + hkdfBytes", async () => {
    const key = await importHkdfKey(vector.ikm);
    expect(key.extractable).toBe(false);
    expect(toHex(await hkdfBytes(key, vector.info, vector.okm.length / 2))).toBe(vector.okm);
  });

  test("hkdfAesGcmKey is the AES-256-GCM key of the first 32 output bytes", async () => {
    const aesKey = await hkdfAesGcmKey(await importHkdfKey(vector.ikm), vector.info);
    expect(aesKey.extractable).toBe(false);
    const iv = new Uint8Array(12).fill(3);
    const plaintext = new TextEncoder().encode("through lib/kdf.ts");
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aesKey, plaintext);
    const cipher = createCipheriv("aes-256-gcm", hex(vector.okm.slice(0, 64)), iv);
    const expected = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    expect(toHex(sealed)).toBe(expected.toString("hex"));
  });
});

// RFC 7914 §11 (PBKDF2-HMAC-SHA256 vectors of the scrypt RFC).
const PBKDF2_VECTORS = [
  {
    password: "passwd",
    salt: "salt",
    iterations: 1,
    derived:
      "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc" +
      "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
  },
  {
    password: "Password",
    salt: "NaCl",
    iterations: 80_000,
    derived:
      "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56" +
      "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
  },
];

describe("PBKDF2-HMAC-SHA256, RFC 7914 §11 (crypto.subtle deriveBits)", () => {
  test.each(PBKDF2_VECTORS)("$password / $salt, c=$iterations", async (vector) => {
    const encoder = new TextEncoder();
    const key = await crypto.subtle.importKey("raw", encoder.encode(vector.password), "PBKDF2", false, ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode(vector.salt), iterations: vector.iterations },
      key,
      (vector.derived.length / 2) * 8,
    );
    expect(toHex(bits)).toBe(vector.derived);
  });

  test.each(PBKDF2_VECTORS)("lib/kdf.ts pbkdf2Sha256: $password / $salt, c=$iterations", async (vector) => {
    const encoder = new TextEncoder();
    const bytes = await pbkdf2Sha256(
      encoder.encode(vector.password),
      encoder.encode(vector.salt),
      vector.iterations,
      vector.derived.length / 2,
    );
    expect(toHex(bytes)).toBe(vector.derived);
  });
});
