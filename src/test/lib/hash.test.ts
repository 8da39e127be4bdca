import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { base64UrlDecode } from "../../convex/lib/encoding";
import { constantTimeEqual, isSha256Hex, randomToken, sha256Hex } from "../../convex/lib/hash";

describe("sha256Hex", () => {
  // FIPS 180-2 examples.
  test.each([
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
  ])("published vector %j", async (input, digest) => {
    expect(await sha256Hex(input)).toBe(digest);
  });

  test("hashes the UTF-8 bytes of non-ASCII text", async () => {
    const text = "dt_live_ключ_🔑";
    expect(await sha256Hex(text)).toBe(createHash("sha256").update(text, "utf8").digest("hex"));
  });
});

describe("isSha256Hex", () => {
  test("accepts sha256Hex output only", async () => {
    expect(isSha256Hex(await sha256Hex("key"))).toBe(true);
    expect(isSha256Hex("a".repeat(64))).toBe(true);
    for (const value of ["a".repeat(63), "a".repeat(65), "A".repeat(64), `${"a".repeat(63)}g`, "", "dt_live_abc"]) {
      expect(isSha256Hex(value)).toBe(false);
    }
  });
});

describe("constantTimeEqual", () => {
  test("is string equality", () => {
    const hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    expect(constantTimeEqual(hash, `${hash}`)).toBe(true);
    expect(constantTimeEqual("", "")).toBe(true);
    expect(constantTimeEqual("ключ🔑", "ключ🔑")).toBe(true);
    expect(constantTimeEqual(hash, `${hash.slice(0, -1)}c`)).toBe(false);
    expect(constantTimeEqual(hash, `c${hash.slice(1)}`)).toBe(false);
    expect(constantTimeEqual(hash, hash.slice(0, -1))).toBe(false);
    expect(constantTimeEqual(hash.slice(0, -1), hash)).toBe(false);
    expect(constantTimeEqual("", "a")).toBe(false);
    // Same length in UTF-16, different bytes.
    expect(constantTimeEqual("é", "e")).toBe(false);
    // A trailing NUL must not compare equal to nothing.
    expect(constantTimeEqual("abc\0", "abc")).toBe(false);
  });
});

describe("randomToken", () => {
  test.each([16, 24, 32])("%i bytes: unpadded base64url of that many bytes", (bytes) => {
    const token = randomToken(bytes);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token).toHaveLength(Math.ceil((bytes * 4) / 3));
    expect(base64UrlDecode(token)).toHaveLength(bytes);
  });

  test("tokens do not repeat", () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken(32)));
    expect(tokens.size).toBe(1000);
  });
});
