/**
 * PBKDF2-HMAC-SHA256 key derivation (WebCrypto) and the bounded cache of
 * derived AES keys. Deriving costs ~30 ms at 100,000 iterations while an
 * AES-GCM operation on a small secret costs microseconds, so derived keys
 * are cached per (scheme, master key id, iterations, salt).
 */
import { CryptoError } from "./errors";
import { LruMap } from "./lru";

/** Iterations used by the current format and by the legacy Dashtray format. */
export const DEFAULT_PBKDF2_ITERATIONS = 100_000;

/** How many derived keys the shared cache keeps (about 1 KB each with the entry; see `npm run bench`). */
export const DEFAULT_KEY_CACHE_CAPACITY = 1024;

function checkIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new CryptoError("INVALID_ARGUMENT", "PBKDF2 iterations must be a positive integer");
  }
}

/** Raw PBKDF2-HMAC-SHA256 output bytes (used for key ids and test vectors). */
export async function pbkdf2Sha256(
  password: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
  lengthBytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  checkIterations(iterations);
  const baseKey = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    baseKey,
    lengthBytes * 8,
  );
  return new Uint8Array(bits);
}

/** A non-extractable AES-256-GCM key derived with PBKDF2-HMAC-SHA256. */
export async function deriveAesGcmKey(
  password: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<CryptoKey> {
  checkIterations(iterations);
  const baseKey = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    baseKey,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * Bounded LRU cache of derived keys. Concurrent requests for the same key
 * share one derivation; a failed derivation is not cached. `derivations`
 * counts real PBKDF2 runs, so batch jobs and tests can bound them.
 */
export class DerivedKeyCache {
  private readonly keys: LruMap<string, CryptoKey>;
  private readonly inFlight = new Map<string, Promise<CryptoKey>>();
  derivations = 0;
  hits = 0;

  constructor(capacity: number = DEFAULT_KEY_CACHE_CAPACITY) {
    this.keys = new LruMap(capacity);
  }

  get size(): number {
    return this.keys.size;
  }

  /** The cached key for `cacheKey`, deriving it with `derive` on a miss. */
  async getOrDerive(cacheKey: string, derive: () => Promise<CryptoKey>): Promise<CryptoKey> {
    const cached = this.keys.get(cacheKey);
    if (cached) {
      this.hits++;
      return cached;
    }
    const pending = this.inFlight.get(cacheKey);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.derivations++;
    const derivation = derive().then(
      (key) => {
        this.keys.set(cacheKey, key);
        this.inFlight.delete(cacheKey);
        return key;
      },
      (error: unknown) => {
        this.inFlight.delete(cacheKey);
        throw error;
      },
    );
    this.inFlight.set(cacheKey, derivation);
    return derivation;
  }

  /** Drops every cached key (tests and benchmarks use it to measure cold paths). */
  clear(): void {
    this.keys.clear();
  }
}

/** The process-wide cache used unless a caller passes its own. */
export const sharedKeyCache = new DerivedKeyCache();
