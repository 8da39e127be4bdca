/**
 * Published test vectors for the primitives the cipher is built on, called
 * the way lib/cipher.ts and lib/kdf.ts call them. Every value below was
 * checked independently against node:crypto.
 */
import { describe, expect, test } from "vitest";
import { IV_BYTES, TAG_BYTES } from "../../convex/lib/cipher";
import { hexDecode, hexEncode, utf8Encode } from "../../convex/lib/encoding";
import { pbkdf2Sha256 } from "../../convex/lib/kdf";

interface GcmVector {
  name: string;
  key: string;
  iv: string;
  plaintext: string;
  aad: string;
  ciphertext: string;
  tag: string;
}

// "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, test cases 13-16
// (AES-256, 96-bit IV, 128-bit tag).
const FEFFE_KEY = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const GCM_VECTORS: GcmVector[] = [
  {
    name: "test case 13: zero key, empty plaintext, no AAD",
    key: "0".repeat(64),
    iv: "0".repeat(24),
    plaintext: "",
    aad: "",
    ciphertext: "",
    tag: "530f8afbc74536b9a963b4f1c4cb738b",
  },
  {
    name: "test case 14: zero key, one zero block, no AAD",
    key: "0".repeat(64),
    iv: "0".repeat(24),
    plaintext: "0".repeat(32),
    aad: "",
    ciphertext: "cea7403d4d606b6e074ec5d3baf39d18",
    tag: "d0d1c8a799996bf0265b98b5d48ab919",
  },
  {
    name: "test case 15: four blocks, no AAD",
    key: FEFFE_KEY,
    iv: "cafebabefacedbaddecaf888",
    plaintext:
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
    aad: "",
    ciphertext:
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
    tag: "b094dac5d93471bdec1a502270e3cc6c",
  },
  {
    name: "test case 16: partial last block, with AAD",
    key: FEFFE_KEY,
    iv: "cafebabefacedbaddecaf888",
    plaintext:
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    ciphertext:
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
    tag: "76fc6ece0f4e1768cddf8853bb2d551b",
  },
];

function gcmParams(vector: GcmVector): AesGcmParams {
  return {
    name: "AES-GCM",
    iv: hexDecode(vector.iv),
    tagLength: TAG_BYTES * 8,
    ...(vector.aad ? { additionalData: hexDecode(vector.aad) } : {}),
  };
}

describe("AES-256-GCM (crypto.subtle, as cipher.ts calls it)", () => {
  test.each(GCM_VECTORS)("$name", async (vector) => {
    expect(hexDecode(vector.iv)).toHaveLength(IV_BYTES);
    const key = await crypto.subtle.importKey("raw", hexDecode(vector.key), "AES-GCM", false, ["encrypt", "decrypt"]);

    const sealed = hexEncode(
      new Uint8Array(await crypto.subtle.encrypt(gcmParams(vector), key, hexDecode(vector.plaintext))),
    );
    expect(sealed).toBe(vector.ciphertext + vector.tag);

    const opened = await crypto.subtle.decrypt(gcmParams(vector), key, hexDecode(sealed));
    expect(hexEncode(new Uint8Array(opened))).toBe(vector.plaintext);
  });

  test("a vector with one tag bit flipped is rejected", async () => {
    const vector = GCM_VECTORS[3]!;
    const key = await crypto.subtle.importKey("raw", hexDecode(vector.key), "AES-GCM", false, ["decrypt"]);
    const sealed = hexDecode(vector.ciphertext + vector.tag);
    sealed[sealed.length - 1]! ^= 0x01;
    await expect(crypto.subtle.decrypt(gcmParams(vector), key, sealed)).rejects.toThrow();
  });
});

// PBKDF2-HMAC-SHA256 vectors in the style of RFC 6070 (which covers SHA-1);
// these SHA-256 values are the widely published ones.
const PBKDF2_VECTORS = [
  {
    password: "password",
    salt: "salt",
    iterations: 1,
    derived: "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
  },
  {
    password: "password",
    salt: "salt",
    iterations: 2,
    derived: "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
  },
  {
    password: "password",
    salt: "salt",
    iterations: 4096,
    derived: "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
  },
  {
    password: "passwordPASSWORDpassword",
    salt: "saltSALTsaltSALTsaltSALTsaltSALTsalt",
    iterations: 4096,
    derived: "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9",
  },
  {
    password: "pass\0word",
    salt: "sa\0lt",
    iterations: 4096,
    derived: "89b69d0516f829893c696226650a8687",
  },
];

describe("PBKDF2-HMAC-SHA256 (lib/kdf.ts pbkdf2Sha256)", () => {
  test.each(PBKDF2_VECTORS)("$password / $salt, c=$iterations", async ({ password, salt, iterations, derived }) => {
    const bytes = await pbkdf2Sha256(utf8Encode(password), utf8Encode(salt), iterations, derived.length / 2);
    expect(hexEncode(bytes)).toBe(derived);
  });

  test("iterations must be a positive integer", async () => {
    for (const iterations of [0, -1, 1.5, Number.NaN]) {
      await expect(pbkdf2Sha256(utf8Encode("password"), utf8Encode("salt"), iterations, 32)).rejects.toMatchObject({
        name: "CryptoError",
        code: "INVALID_ARGUMENT",
      });
    }
  });
});
