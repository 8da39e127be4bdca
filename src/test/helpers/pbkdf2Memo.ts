/**
 * Memoises PBKDF2 at crypto.subtle for the tests that install it: the same
 * password, salt, iterations and length give the same bits, so computing
 * them once per test file changes no result, only the time (each run is
 * ~20-37 ms here). For tests about which keys open which values, never for
 * cost: counting tests use the cold harness (helpers/cold.ts) instead.
 */
import { afterAll, beforeAll, vi } from "vitest";

const hex = (bytes: ArrayBuffer | ArrayBufferView) =>
  Array.from(new Uint8Array(ArrayBuffer.isView(bytes) ? bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) : bytes), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");

export function useMemoisedPbkdf2(): void {
  const subtle = crypto.subtle;
  const importKey = subtle.importKey.bind(subtle);
  const deriveBits = subtle.deriveBits.bind(subtle);
  const deriveKey = subtle.deriveKey.bind(subtle);
  const passwords = new WeakMap<CryptoKey, Uint8Array<ArrayBuffer>>();
  const memo = new Map<string, Promise<ArrayBuffer>>();
  const bitsOf = (algorithm: Pbkdf2Params, baseKey: CryptoKey, length: number) => {
    const password = passwords.get(baseKey);
    if (password === undefined) return deriveBits(algorithm, baseKey, length);
    const id = `${hex(password)}|${hex(algorithm.salt as ArrayBuffer)}|${algorithm.iterations}|${String(algorithm.hash)}|${length}`;
    let bits = memo.get(id);
    if (!bits) {
      bits = importKey("raw", password, "PBKDF2", false, ["deriveBits"]).then((key) => deriveBits(algorithm, key, length));
      memo.set(id, bits);
    }
    // A copy each time: callers zero the bits they were given (lib/keyring.ts wipes the root after import).
    return bits.then((known) => known.slice(0));
  };
  beforeAll(() => {
    vi.spyOn(subtle, "importKey").mockImplementation((async (...args: Parameters<SubtleCrypto["importKey"]>) => {
      const key = await (importKey as (...a: unknown[]) => Promise<CryptoKey>)(...args);
      if (args[0] === "raw" && (args[2] === "PBKDF2" || (args[2] as Algorithm).name === "PBKDF2")) passwords.set(key, new Uint8Array(hex(args[1] as ArrayBuffer).match(/../g)?.map((h) => parseInt(h, 16)) ?? []));
      return key;
    }) as SubtleCrypto["importKey"]);
    vi.spyOn(subtle, "deriveBits").mockImplementation(async (algorithm, baseKey, length) =>
      (algorithm as Algorithm).name === "PBKDF2" ? bitsOf(algorithm as Pbkdf2Params, baseKey, length ?? 0) : deriveBits(algorithm, baseKey, length),
    );
    vi.spyOn(subtle, "deriveKey").mockImplementation(async (algorithm, baseKey, derivedKeyType, extractable, usages) => {
      if ((algorithm as Algorithm).name !== "PBKDF2") return deriveKey(algorithm, baseKey, derivedKeyType, extractable, usages);
      const bits = await bitsOf(algorithm as Pbkdf2Params, baseKey, (derivedKeyType as AesKeyGenParams).length);
      return importKey("raw", bits, derivedKeyType, extractable, usages);
    });
  });
  afterAll(() => vi.restoreAllMocks());
}
