/**
 * Published vectors for the key derivations of format v2: PBKDF2-HMAC-SHA256
 * on WebCrypto (deriveBits), and the project's HKDF-SHA256 (lib/kdf.ts),
 * which is computed with HMAC-SHA256 signs and never asks crypto.subtle for
 * "HKDF" (older Convex backends do not implement it).
 * (vectors.test.ts covers AES-256-GCM and the RFC 6070-style PBKDF2 vectors.)
 */
import { createCipheriv, hkdfSync } from "node:crypto";
import { describe, expect, test } from "vitest";
import { hkdfAesGcmKey, hkdfExpand, hkdfExtract, hkdfSha256, pbkdf2Sha256 } from "../../convex/lib/kdf";

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

describe("HKDF-SHA256 from HMAC-SHA256 (lib/kdf.ts), RFC 5869 Appendix A", () => {
  test.each(HKDF_VECTORS)("$name: hkdfSha256", async (vector) => {
    expect(toHex(await hkdfSha256(vector.ikm, vector.salt, vector.info, vector.okm.length / 2))).toBe(vector.okm);
  });

  test.each(HKDF_VECTORS)("$name: extract then expand, every prefix length", async (vector) => {
    const prk = await hkdfExtract(vector.ikm, vector.salt);
    expect(prk.extractable).toBe(false);
    for (const length of [1, 8, 31, 32, 33, vector.okm.length / 2]) {
      expect(toHex(await hkdfExpand(prk, vector.info, length))).toBe(vector.okm.slice(0, length * 2));
    }
  });

  test.each(HKDF_VECTORS)("$name: hkdfAesGcmKey is the non-extractable AES-256-GCM key of the first 32 bytes", async (vector) => {
    const aesKey = await hkdfAesGcmKey(await hkdfExtract(vector.ikm, vector.salt), vector.info);
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

  test("an empty salt is RFC 5869's HashLen zeros (the salt format v2 uses)", async () => {
    const ikm = range(0x20, 0x5f);
    const info = new TextEncoder().encode("dashtray/v2/key-id");
    const empty = await hkdfSha256(ikm, new Uint8Array(0), info, 42);
    expect(toHex(await hkdfSha256(ikm, new Uint8Array(32), info, 42))).toBe(toHex(empty));
    expect(toHex(empty)).toBe(toHex(hkdfSync("sha256", ikm, new Uint8Array(0), info, 42)));
  });

  test("matches node:crypto's HKDF on random inputs, up to many blocks", async () => {
    for (const length of [8, 32, 64, 100, 255 * 32]) {
      const ikm = crypto.getRandomValues(new Uint8Array(length % 70 + 1));
      const salt = crypto.getRandomValues(new Uint8Array(length % 90));
      const info = crypto.getRandomValues(new Uint8Array(length % 50));
      const expected = toHex(hkdfSync("sha256", ikm, salt, info, length));
      expect(toHex(await hkdfSha256(ikm, salt, info, length))).toBe(expected);
    }
  });

  test("refuses output lengths RFC 5869 does not allow", async () => {
    const prk = await hkdfExtract(range(1, 32));
    for (const length of [0, -1, 1.5, 255 * 32 + 1]) {
      await expect(hkdfExpand(prk, new Uint8Array(0), length)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
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
