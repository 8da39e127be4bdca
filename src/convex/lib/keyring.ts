/**
 * Master keys and the keyring used during rotation. A master key is known
 * by a short id derived from it (PBKDF2, so the id is as hard to brute-force
 * as the ciphertext itself); the secret is held in a private field so that
 * logging or serialising a key shows only its id.
 */
import { base64UrlEncode, utf8Encode } from "./encoding";
import { CryptoError } from "./errors";
import { DEFAULT_PBKDF2_ITERATIONS, DerivedKeyCache, deriveAesGcmKey, pbkdf2Sha256 } from "./kdf";
import { LruMap } from "./lru";

/** Shortest accepted master key, in characters (`openssl rand -hex 32` gives 64). */
export const MIN_MASTER_KEY_LENGTH = 32;

/** Bytes of the key id (encoded as 11 base64url characters). */
export const KEY_ID_BYTES = 8;

const KEY_ID_SALT = utf8Encode("dashtray/master-key-id/v1");
const keyIdCache = new LruMap<string, string>(32);
let keyIdDerivations = 0;

/**
 * How many key ids this isolate computed with PBKDF2 (a cached id costs
 * none). Loading a keyring in a fresh isolate costs one per key, so batch
 * jobs count these toward their per-transaction derivation budget.
 */
export function keyIdDerivationCount(): number {
  return keyIdDerivations;
}

/** Forgets every cached key id, as a fresh isolate would (tests and benchmarks measure cold paths). */
export function clearKeyIdCache(): void {
  keyIdCache.clear();
}

async function computeKeyId(secret: string): Promise<string> {
  keyIdDerivations++;
  const bytes = await pbkdf2Sha256(utf8Encode(secret), KEY_ID_SALT, DEFAULT_PBKDF2_ITERATIONS, KEY_ID_BYTES);
  return base64UrlEncode(bytes);
}

/** Which derivation a cached AES key belongs to. */
export type DerivationScheme = "v1" | "legacy";

/** One master key: its public id, and derivations from its private secret. */
export class MasterKey {
  readonly id: string;
  readonly #secret: string;

  private constructor(id: string, secret: string) {
    this.id = id;
    this.#secret = secret;
  }

  /** Validates `secret` and computes its id; `source` names it in errors (never the value). */
  static async create(secret: string, source = "MASTER_ENCRYPTION_KEY"): Promise<MasterKey> {
    if (secret.length < MIN_MASTER_KEY_LENGTH) {
      throw new CryptoError(
        "MASTER_KEY_TOO_SHORT",
        `${source} must be at least ${MIN_MASTER_KEY_LENGTH} characters (generate one with: openssl rand -hex 32)`,
      );
    }
    let id = keyIdCache.get(secret);
    if (id === undefined) {
      id = await computeKeyId(secret);
      keyIdCache.set(secret, id);
    }
    return new MasterKey(id, secret);
  }

  /**
   * The AES-256-GCM key for `salt`, from `cache` when present.
   * "v1": PBKDF2(master, salt). "legacy": PBKDF2(master + salt, salt), as the original Dashtray did.
   */
  aesKey(scheme: DerivationScheme, salt: string, iterations: number, cache: DerivedKeyCache): Promise<CryptoKey> {
    const cacheKey = `${scheme}\u0000${this.id}\u0000${iterations}\u0000${salt}`;
    const password = scheme === "v1" ? this.#secret : this.#secret + salt;
    return cache.getOrDerive(cacheKey, () => deriveAesGcmKey(utf8Encode(password), utf8Encode(salt), iterations));
  }

  /** Whether two keys are the same secret (compared by id). */
  equals(other: MasterKey): boolean {
    return other.id === this.id;
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }

  /** "MasterKey(<id>)": string conversion shows the id, never the secret. */
  toString(): string {
    return `MasterKey(${this.id})`;
  }
}

/** Environment variables the keyring is read from. */
export interface MasterKeyEnv {
  MASTER_ENCRYPTION_KEY?: string | undefined;
  OLD_MASTER_KEY?: string | undefined;
}

/**
 * The current master key (encrypts everything new) and the previous ones
 * (still decrypt during a rotation). Decryption picks a key by the id stored
 * in the ciphertext.
 */
export class Keyring {
  readonly current: MasterKey;
  /** Previous keys, without duplicates and without the current key. */
  readonly previous: readonly MasterKey[];
  /** True when OLD_MASTER_KEY lists the current key (a rotation that would change nothing). */
  readonly previousIncludesCurrent: boolean;

  private constructor(current: MasterKey, previous: MasterKey[], previousIncludesCurrent: boolean) {
    this.current = current;
    this.previous = previous;
    this.previousIncludesCurrent = previousIncludesCurrent;
  }

  /** A keyring from secrets: `current` first, then previous keys in order. */
  static async fromSecrets(current: string, previous: readonly string[] = []): Promise<Keyring> {
    const currentKey = await MasterKey.create(current, "MASTER_ENCRYPTION_KEY");
    const previousKeys: MasterKey[] = [];
    let previousIncludesCurrent = false;
    for (const [index, secret] of previous.entries()) {
      const key = await MasterKey.create(secret, `OLD_MASTER_KEY (entry ${index + 1})`);
      if (key.equals(currentKey)) previousIncludesCurrent = true;
      else if (!previousKeys.some((k) => k.equals(key))) previousKeys.push(key);
    }
    return new Keyring(currentKey, previousKeys, previousIncludesCurrent);
  }

  /**
   * A keyring from MASTER_ENCRYPTION_KEY and OLD_MASTER_KEY (comma-separated,
   * surrounding whitespace ignored). Refuses a missing or short key, and a
   * current key with a comma (it could not be listed in OLD_MASTER_KEY later).
   */
  static async fromEnv(env: MasterKeyEnv): Promise<Keyring> {
    const current = env.MASTER_ENCRYPTION_KEY?.trim();
    if (!current) {
      throw new CryptoError(
        "MASTER_KEY_MISSING",
        'MASTER_ENCRYPTION_KEY is not set (run: npx convex env set MASTER_ENCRYPTION_KEY "$(openssl rand -hex 32)")',
      );
    }
    if (current.includes(",")) {
      // It could never be rotated out: OLD_MASTER_KEY would split it at the comma.
      throw new CryptoError(
        "MASTER_KEY_INVALID",
        "MASTER_ENCRYPTION_KEY must not contain a comma (OLD_MASTER_KEY separates keys with commas); generate one with: openssl rand -hex 32",
      );
    }
    const previous = (env.OLD_MASTER_KEY ?? "")
      .split(",")
      .map((secret) => secret.trim())
      .filter((secret) => secret.length > 0);
    return Keyring.fromSecrets(current, previous);
  }

  /** Every key, current first. */
  get all(): readonly MasterKey[] {
    return [this.current, ...this.previous];
  }

  /** The key with this id, if the keyring has it. */
  get(id: string): MasterKey | undefined {
    return this.all.find((key) => key.id === id);
  }

  toJSON(): { current: string; previous: string[] } {
    return { current: this.current.id, previous: this.previous.map((k) => k.id) };
  }

  /** "Keyring(current=<id>, previous=[<id>, …])": ids only. */
  toString(): string {
    return `Keyring(current=${this.current.id}, previous=[${this.previous.map((k) => k.id).join(", ")}])`;
  }
}
