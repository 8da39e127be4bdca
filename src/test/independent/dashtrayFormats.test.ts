/**
 * Self-checks of the independent node:crypto implementation
 * (src/test/independent/dashtrayFormats.ts): it opens every committed vector,
 * agrees with the WebCrypto legacy helper, and follows the documented lengths
 * and encodings. The project's code is not involved here (see
 * src/test/lib/formats.test.ts).
 */
import { describe, expect, test } from "vitest";
import { encryptLegacy as encryptLegacyWebCrypto } from "../helpers/legacy";
import {
  base64DecodeStrict,
  base64urlDecodeStrict,
  decryptAny,
  encryptLegacy,
  encryptV1,
  encryptV2,
  independentPbkdf2Runs,
  MAX_STORED_CHARS,
  shapeOf,
  v1KeyId,
  v2KeyId,
  v2Root,
  type IndependentKeys,
} from "./dashtrayFormats";
import { FORMAT_VECTORS } from "./vectorFile";

const KEYS: IndependentKeys = {
  current: FORMAT_VECTORS.masterKeys.current,
  previous: [FORMAT_VECTORS.masterKeys.old],
  rootSalt: base64urlDecodeStrict(FORMAT_VECTORS.rootSalt)!,
};

describe("committed vectors", () => {
  test("the file covers every format, both keys, and every plaintext kind", () => {
    const kinds = new Set(FORMAT_VECTORS.vectors.map((vector) => `${vector.format}/${vector.key}`));
    expect([...kinds].sort()).toEqual(["legacy/current", "legacy/old", "v1/current", "v1/old", "v2/current", "v2/old"]);
    const plaintexts = FORMAT_VECTORS.vectors.map((vector) => vector.plaintext);
    expect(plaintexts).toContain("");
    expect(plaintexts.some((text) => text.length === 1024)).toBe(true);
    expect(plaintexts.some((text) => new TextEncoder().encode(text).length > text.length)).toBe(true);
    expect(KEYS.rootSalt).toHaveLength(32);
  });

  test.each(FORMAT_VECTORS.vectors)("$name", (vector) => {
    expect(shapeOf(vector.ciphertext)).toBe(vector.format === "legacy" ? "legacy" : "dtenc");
    const opened = decryptAny(KEYS, vector.ciphertext, vector);
    expect(opened).toEqual({
      plaintext: vector.plaintext,
      format: vector.format,
      keyIndex: vector.key === "current" ? 0 : 1,
    });
    if (vector.format !== "legacy") expect(vector.ciphertext.split(":")[2]).toBe(vector.keyId);
  });

  test("a keyring without the old key opens only the current key's vectors", () => {
    for (const vector of FORMAT_VECTORS.vectors) {
      const open = () => decryptAny({ ...KEYS, previous: [] }, vector.ciphertext, vector);
      if (vector.key === "current") expect(open().plaintext).toBe(vector.plaintext);
      else expect(open).toThrow(vector.format === "v2" ? /UNKNOWN_KEY_ID/ : /DECRYPTION_FAILED/);
    }
  });
});

describe("the independent implementation against itself and the WebCrypto helper", () => {
  const context = { salt: "project-salt", purpose: "connections/c1/credentials", version: 3 };

  test("the WebCrypto legacy helper and node:crypto agree", async () => {
    const value = await encryptLegacyWebCrypto(KEYS.current, context.salt, "legacy ✓");
    expect(decryptAny(KEYS, value, context).plaintext).toBe("legacy ✓");
    const mine = encryptLegacy(KEYS.current, context.salt, "again ✓");
    expect(decryptAny(KEYS, mine, context)).toMatchObject({ plaintext: "again ✓", format: "legacy" });
  });

  test("v2 and v1 lengths are as documented", () => {
    for (const n of [0, 1, 2, 3, 100]) {
      const plaintext = "x".repeat(n);
      const v2 = encryptV2(KEYS.current, KEYS.rootSalt, context, plaintext);
      expect(v2).toHaveLength(38 + Math.ceil((4 * (n + 16)) / 3));
      expect(v2).toMatch(/^dtenc:v2:[A-Za-z0-9_-]{11}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
      expect(v2.split(":")[2]).toBe(v2KeyId(v2Root(KEYS.current, KEYS.rootSalt)));
      const v1 = encryptV1(KEYS.current, context, plaintext);
      expect(v1).toHaveLength(38 + Math.ceil((4 * (n + 16)) / 3));
      expect(v1.split(":")[2]).toBe(v1KeyId(KEYS.current));
    }
    expect(encryptV2(KEYS.current, KEYS.rootSalt, context, "")).toHaveLength(60);
    expect(MAX_STORED_CHARS).toBe(38 + Math.ceil((4 * (65_536 + 16)) / 3));
  });

  test("v2 binds the version; v1 and legacy do not", () => {
    const v2 = encryptV2(KEYS.current, KEYS.rootSalt, context, "secret");
    expect(() => decryptAny(KEYS, v2, { ...context, version: 4 })).toThrow(/DECRYPTION_FAILED/);
    const v1 = encryptV1(KEYS.current, context, "secret");
    expect(decryptAny(KEYS, v1, { ...context, version: 4 }).plaintext).toBe("secret");
  });

  test("strict base64url and base64", () => {
    expect(base64urlDecodeStrict("AAAAAAAAAAA")).toHaveLength(8);
    expect(base64urlDecodeStrict("AAAAAAAAAAB")).toBeNull(); // non-zero unused bits
    expect(base64urlDecodeStrict("AAAAAAAAAAA=")).toBeNull();
    expect(base64urlDecodeStrict("AAAAAAAAAA+")).toBeNull();
    expect(base64urlDecodeStrict("AAAAA")).toBeNull(); // length ≡ 1 (mod 4)
    expect(base64DecodeStrict("AAAA")).toHaveLength(3);
    expect(base64DecodeStrict("AAA")).toBeNull();
    expect(base64DecodeStrict("AB==")).toBeNull();
    expect(base64DecodeStrict("AA-_")).toBeNull();
  });

  test("derives no more than a handful of PBKDF2 roots in this file", () => {
    expect(independentPbkdf2Runs()).toBeLessThanOrEqual(10);
  });
});
