import { describe, expect, test } from "vitest";
import {
  base64Decode,
  base64Encode,
  base64UrlDecode,
  base64UrlEncode,
  concatBytes,
  hexDecode,
  hexEncode,
  utf8Decode,
  utf8Encode,
} from "../../convex/lib/encoding";

/** Bytes 0, 1, … n-1 shifted so every value 0-255 turns up across lengths. */
function sampleBytes(length: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length }, (_, i) => (i * 37 + length * 11) & 0xff);
}

describe("base64url (current format)", () => {
  test("RFC 4648 vectors, unpadded", () => {
    const vectors: [string, string][] = [["", ""], ["f", "Zg"], ["fo", "Zm8"], ["foo", "Zm9v"], ["foob", "Zm9vYg"], ["fooba", "Zm9vYmE"], ["foobar", "Zm9vYmFy"]];
    for (const [text, encoded] of vectors) {
      expect(base64UrlEncode(utf8Encode(text))).toBe(encoded);
      expect(utf8Decode(base64UrlDecode(encoded)!)).toBe(text);
    }
    expect(base64UrlEncode(Uint8Array.of(0xfb, 0xff, 0xbf))).toBe("-_-_");
  });

  test("round-trips every length from 0 to 64 bytes", () => {
    for (let length = 0; length <= 64; length++) {
      const bytes = sampleBytes(length);
      expect(base64UrlDecode(base64UrlEncode(bytes))).toEqual(bytes);
    }
  });

  test("rejects padding, standard-alphabet characters, bad lengths and non-canonical last characters", () => {
    for (const text of ["Zg==", "Zm8=", "+/8", "Zm9v Yg", "Z", "Zm9vY", "Zh", "Zm9", "Zm9vYmF"]) {
      expect(base64UrlDecode(text)).toBeNull();
    }
    // Zh and Zm9 differ from Zg and Zm8 only in bits that carry no data.
    expect(base64UrlDecode("Zg")).not.toBeNull();
    expect(base64UrlDecode("Zm9v\u00e9")).toBeNull();
    expect(base64UrlDecode("Zm9v\u{1F511}")).toBeNull();
  });

  test("agrees with the platform's base64 (btoa) on random bytes, small and large", () => {
    for (const length of [1, 2, 3, 12, 80, 1000, 100_000]) {
      const bytes = Uint8Array.from({ length }, () => Math.floor(Math.random() * 256));
      let binary = "";
      for (const byte of bytes) binary += String.fromCharCode(byte);
      const expected = btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      expect(base64UrlEncode(bytes)).toBe(expected);
      expect(base64UrlDecode(expected)).toEqual(bytes);
    }
  });
});

describe("base64 (legacy format)", () => {
  test("round-trips and accepts only canonical padded base64", () => {
    for (let length = 0; length <= 40; length++) {
      const bytes = sampleBytes(length);
      expect(base64Decode(base64Encode(bytes))).toEqual(bytes);
    }
    expect(base64Encode(utf8Encode("foobar"))).toBe("Zm9vYmFy");
    for (const text of ["Zg", "Zg=", "Zh==", "Zm9=", "Zm9v\n", "-_-_", "Zm9vYmFy="]) expect(base64Decode(text)).toBeNull();
  });
});

describe("hex, UTF-8, concat", () => {
  test("hex round trip and rejection", () => {
    expect(hexEncode(Uint8Array.of(0, 15, 16, 255))).toBe("000f10ff");
    expect(hexDecode("000F10ff")).toEqual(Uint8Array.of(0, 15, 16, 255));
    expect(() => hexDecode("abc")).toThrow(TypeError);
    expect(() => hexDecode("zz")).toThrow(TypeError);
  });

  test("UTF-8 decoding is strict", () => {
    expect(utf8Decode(utf8Encode("ключ 🔑"))).toBe("ключ 🔑");
    expect(() => utf8Decode(Uint8Array.of(0xc3, 0x28))).toThrow();
  });

  test("concatBytes", () => {
    expect(concatBytes(Uint8Array.of(1), new Uint8Array(), Uint8Array.of(2, 3))).toEqual(Uint8Array.of(1, 2, 3));
  });
});
