/**
 * Master keys and the keyring (the current key and the previous ones during
 * a rotation). Loading a keyring derives nothing: each derivation (a master
 * key's v2 root, its key ids, per-salt AES keys) runs the first time a call
 * needs it and is memoised in the keyring object, which lives for one call.
 * Nothing is kept at module level: Convex runs every call in a fresh V8
 * context, so a module-level cache would never be warm in production.
 *
 * The secret is held in a private field, so logging or serialising a key or
 * a keyring shows only where the key came from ("OLD_MASTER_KEY (entry 2)").
 */
import { base64UrlDecode, base64UrlEncode, utf8Encode } from "./encoding";
import { CryptoError, type CryptoErrorCode } from "./errors";
import { weakKeyReasons, type WeakKeyReason } from "./keyStrength";
import { DEFAULT_PBKDF2_ITERATIONS, deriveAesGcmKey, hkdfAesGcmKey, hkdfExpand, hkdfExtract, pbkdf2Sha256 } from "./kdf";

/** Shortest accepted master key, in characters (`openssl rand -hex 32` gives 64). */
export const MIN_MASTER_KEY_LENGTH = 32;

/** Bytes of a key id, v1 or v2 (encoded as 11 base64url characters). */
export const KEY_ID_BYTES = 8;

/** Bytes of the deployment's root salt (stored as 43 base64url characters). */
export const ROOT_SALT_BYTES = 32;

/** Bytes of a v2 root (the PBKDF2 output HKDF expands). */
const ROOT_BYTES = 32;

const V1_KEY_ID_SALT = utf8Encode("dashtray/master-key-id/v1");
const V2_KEY_ID_INFO = utf8Encode("dashtray/v2/key-id");
const V2_AES_INFO_PREFIX = "dashtray/v2/aes-256-gcm/";

/** Which derivation an AES key comes from: "v2" (HKDF from the root), "v1" or "legacy" (PBKDF2 per salt). */
export type DerivationScheme = "v2" | "v1" | "legacy";

/**
 * The root salt's bytes, refusing anything but base64url of ROOT_SALT_BYTES
 * bytes (ROOT_SALT_INVALID). Null stays null: a deployment that never
 * encrypted anything in format v2 has no root salt yet.
 */
export function parseRootSalt(rootSalt: string | null): Uint8Array<ArrayBuffer> | null {
  if (rootSalt === null) return null;
  const bytes = base64UrlDecode(rootSalt);
  if (bytes === null || bytes.length !== ROOT_SALT_BYTES) {
    throw new CryptoError("ROOT_SALT_INVALID", `the deployment's root salt must be base64url of ${ROOT_SALT_BYTES} bytes`);
  }
  return bytes;
}

/** Counts the PBKDF2 runs of one keyring (shared by its keys). */
interface Pbkdf2Meter {
  runs: number;
}

/** One master key: where it came from, and memoised derivations from its private secret. */
export class MasterKey {
  /** Where the key was configured, for messages: "MASTER_ENCRYPTION_KEY" or "OLD_MASTER_KEY (entry i)". */
  readonly source: string;
  readonly #secret: string;
  readonly #rootSalt: Uint8Array<ArrayBuffer> | null;
  readonly #meter: Pbkdf2Meter;
  /** Derivations of this call, by label; a pending promise is shared by concurrent callers. */
  readonly #derived = new Map<string, Promise<unknown>>();

  private constructor(secret: string, source: string, rootSalt: Uint8Array<ArrayBuffer> | null, meter: Pbkdf2Meter) {
    this.#secret = secret;
    this.source = source;
    this.#rootSalt = rootSalt;
    this.#meter = meter;
  }

  /** @internal Validates `secret` (no derivation); used by Keyring. */
  static create(secret: string, source: string, rootSalt: Uint8Array<ArrayBuffer> | null, meter: Pbkdf2Meter): MasterKey {
    if (secret.length < MIN_MASTER_KEY_LENGTH) {
      throw new CryptoError(
        "MASTER_KEY_TOO_SHORT",
        `${source} must be at least ${MIN_MASTER_KEY_LENGTH} characters (generate one with: openssl rand -hex 32)`,
        source,
      );
    }
    return new MasterKey(secret, source, rootSalt, meter);
  }

  /**
   * The memoised result of `derive` under `label`. A failed derivation is
   * forgotten, so the next request retries. `pbkdf2` counts it as a run.
   */
  #memo<T>(label: string, pbkdf2: boolean, derive: () => Promise<T>): Promise<T> {
    const known = this.#derived.get(label);
    if (known) return known as Promise<T>;
    if (pbkdf2) this.#meter.runs++;
    const pending = derive();
    this.#derived.set(label, pending);
    pending.catch(() => {
      if (this.#derived.get(label) === pending) this.#derived.delete(label);
    });
    return pending;
  }

  /** The v2 root's HKDF PRK (an HMAC key): HKDF-Extract(PBKDF2(master key, root salt)), one PBKDF2 run per keyring. */
  #root(): Promise<CryptoKey> {
    const rootSalt = this.#rootSalt;
    if (rootSalt === null && !this.#derived.has("root")) {
      return Promise.reject(
        new CryptoError("ROOT_SALT_INVALID", "the deployment has no root salt, so format v2 keys cannot be derived"),
      );
    }
    return this.#memo("root", true, async () => {
      const root = await pbkdf2Sha256(utf8Encode(this.#secret), rootSalt ?? new Uint8Array(0), DEFAULT_PBKDF2_ITERATIONS, ROOT_BYTES);
      try {
        return await hkdfExtract(root);
      } finally {
        root.fill(0);
      }
    });
  }

  /** This key's v2 id: base64url(HKDF(root, "dashtray/v2/key-id", 8 bytes)); costs the root if not yet derived. */
  keyId(): Promise<string> {
    return this.#memo("keyId", false, async () => base64UrlEncode(await hkdfExpand(await this.#root(), V2_KEY_ID_INFO, KEY_ID_BYTES)));
  }

  /** This key's v1 id: base64url(PBKDF2(master key, "dashtray/master-key-id/v1", 8 bytes)); one PBKDF2 run. */
  v1KeyId(): Promise<string> {
    return this.#memo("v1KeyId", true, async () =>
      base64UrlEncode(await pbkdf2Sha256(utf8Encode(this.#secret), V1_KEY_ID_SALT, DEFAULT_PBKDF2_ITERATIONS, KEY_ID_BYTES)),
    );
  }

  /**
   * The non-extractable AES-256-GCM key for `salt`:
   * "v2": HKDF(root, "dashtray/v2/aes-256-gcm/" + salt) (no PBKDF2 once the root exists);
   * "v1": PBKDF2(master key, salt); "legacy": PBKDF2(master key + salt, salt), as the original Dashtray did.
   */
  aesKey(scheme: DerivationScheme, salt: string): Promise<CryptoKey> {
    const label = `${scheme}\u0000${salt}`;
    switch (scheme) {
      case "v2":
        return this.#memo(label, false, async () => hkdfAesGcmKey(await this.#root(), utf8Encode(V2_AES_INFO_PREFIX + salt)));
      case "v1":
        return this.#memo(label, true, () => deriveAesGcmKey(utf8Encode(this.#secret), utf8Encode(salt), DEFAULT_PBKDF2_ITERATIONS));
      case "legacy":
        return this.#memo(label, true, () =>
          deriveAesGcmKey(utf8Encode(this.#secret + salt), utf8Encode(salt), DEFAULT_PBKDF2_ITERATIONS),
        );
    }
  }

  /**
   * Whether this keyring already derived (or is deriving) the PBKDF2 output
   * that `kind` needs, so using it costs no further PBKDF2 run: "root" (v2
   * keys and the v2 id), or the v1 / legacy key of `salt`. Batch jobs use it
   * to stay within a derivation budget.
   */
  hasDerived(kind: "root" | "v1" | "legacy", salt = ""): boolean {
    return this.#derived.has(kind === "root" ? "root" : `${kind}\u0000${salt}`);
  }

  /** Why this key looks non-random (lib/keyStrength.ts); empty for a key that looks generated. No derivation. */
  weakReasons(): WeakKeyReason[] {
    return weakKeyReasons(this.#secret);
  }

  /** Whether two keys are the same secret (no derivation). */
  equals(other: MasterKey): boolean {
    return other.#secret === this.#secret;
  }

  toJSON(): { source: string } {
    return { source: this.source };
  }

  /** "MasterKey(<source>)": string conversion never shows the secret. */
  toString(): string {
    return `MasterKey(${this.source})`;
  }
}

/** Environment variables the keyring is read from. */
export interface MasterKeyEnv {
  MASTER_ENCRYPTION_KEY?: string | undefined;
  OLD_MASTER_KEY?: string | undefined;
}

/** An OLD_MASTER_KEY entry that could not be used (never its value). */
export interface InvalidKeyEntry {
  /** 1-based position in OLD_MASTER_KEY (or in `previous` for fromSecrets). */
  entry: number;
  code: CryptoErrorCode;
}

/** Where an OLD_MASTER_KEY entry is, for messages: "OLD_MASTER_KEY (entry i)". */
export function oldKeyEntrySource(entry: number): string {
  return `OLD_MASTER_KEY (entry ${entry})`;
}

/** Options of Keyring.findByKeyId. */
export interface FindKeyOptions {
  /** Index in `keyring.all` of the key most likely to match; tried first. */
  hint?: number;
}

/**
 * The current master key (encrypts everything new) and the previous ones
 * (still decrypt during a rotation), with the deployment's root salt. One
 * keyring per call: it memoises that call's derivations.
 */
export class Keyring {
  readonly current: MasterKey;
  /** Previous keys, without duplicates and without the current key. */
  readonly previous: readonly MasterKey[];
  /** True when OLD_MASTER_KEY lists the current key (a rotation that would change nothing). */
  readonly previousIncludesCurrent: boolean;
  /**
   * OLD_MASTER_KEY entries that are unusable (too short). They do not stop
   * the keyring from loading; a decryption that finds no key fails naming them.
   */
  readonly invalidPrevious: readonly InvalidKeyEntry[];
  readonly #meter: Pbkdf2Meter;

  private constructor(
    current: MasterKey,
    previous: MasterKey[],
    previousIncludesCurrent: boolean,
    invalidPrevious: InvalidKeyEntry[],
    meter: Pbkdf2Meter,
  ) {
    this.current = current;
    this.previous = previous;
    this.previousIncludesCurrent = previousIncludesCurrent;
    this.invalidPrevious = invalidPrevious;
    this.#meter = meter;
  }

  /** Index in `all` per key id (v2 or v1) believed to be that key's: see useKeyIdHints. */
  readonly #keyIdHints = new Map<string, number>();

  /**
   * Records which key each id probably belongs to: `order.v2[i]` and
   * `order.v1[i]` are the ids of `all[i]` as seen when they were computed
   * (e.g. by a rotation job's start). Decryption then tries that key first,
   * so a value under an old key costs that key's root alone. A hint is
   * verified like any guess (by the key id or the GCM tag), so a stale one
   * costs a derivation, never a wrong answer. Returns the keyring.
   */
  useKeyIdHints(order: { v2: readonly string[]; v1: readonly string[] }): this {
    for (const ids of [order.v2, order.v1]) {
      ids.slice(0, this.all.length).forEach((keyId, index) => this.#keyIdHints.set(keyId, index));
    }
    return this;
  }

  /** The index in `all` of the key `keyId` probably belongs to (useKeyIdHints), if known. */
  hintFor(keyId: string): number | undefined {
    return this.#keyIdHints.get(keyId);
  }

  /** PBKDF2 runs this keyring performed so far (roots, v1 and legacy keys, v1 ids). */
  get pbkdf2Runs(): number {
    return this.#meter.runs;
  }

  static #build(current: string, previous: readonly { secret: string; entry: number }[], rootSalt: string | null): Keyring {
    const salt = parseRootSalt(rootSalt);
    const meter: Pbkdf2Meter = { runs: 0 };
    const currentKey = MasterKey.create(current, "MASTER_ENCRYPTION_KEY", salt, meter);
    const previousKeys: MasterKey[] = [];
    const invalid: InvalidKeyEntry[] = [];
    let previousIncludesCurrent = false;
    for (const { secret, entry } of previous) {
      let key: MasterKey;
      try {
        key = MasterKey.create(secret, oldKeyEntrySource(entry), salt, meter);
      } catch (error) {
        if (error instanceof CryptoError) {
          invalid.push({ entry, code: error.code });
          continue;
        }
        throw error;
      }
      if (key.equals(currentKey)) previousIncludesCurrent = true;
      else if (!previousKeys.some((k) => k.equals(key))) previousKeys.push(key);
    }
    return new Keyring(currentKey, previousKeys, previousIncludesCurrent, invalid, meter);
  }

  /**
   * A keyring from secrets: `current` first, then previous keys in order;
   * `rootSalt` is the deployment's (base64url of 32 bytes, or null if it has
   * none yet). Derives nothing. A short current key or a bad root salt throws;
   * a short previous key is recorded in `invalidPrevious`.
   */
  static fromSecrets(current: string, previous: readonly string[] = [], rootSalt: string | null): Keyring {
    return Keyring.#build(
      current,
      previous.map((secret, index) => ({ secret, entry: index + 1 })),
      rootSalt,
    );
  }

  /**
   * A keyring from MASTER_ENCRYPTION_KEY and OLD_MASTER_KEY (comma-separated,
   * surrounding whitespace and empty entries ignored). Refuses a missing or
   * short current key, and one with a comma (it could not be listed in
   * OLD_MASTER_KEY later). Derives nothing.
   */
  static fromEnv(env: MasterKeyEnv, rootSalt: string | null): Keyring {
    const current = env.MASTER_ENCRYPTION_KEY?.trim();
    if (!current) {
      throw new CryptoError(
        "MASTER_KEY_MISSING",
        'MASTER_ENCRYPTION_KEY is not set (run: npx convex env set MASTER_ENCRYPTION_KEY "$(openssl rand -hex 32)")',
        "MASTER_ENCRYPTION_KEY",
      );
    }
    if (current.includes(",")) {
      // It could never be rotated out: OLD_MASTER_KEY would split it at the comma.
      throw new CryptoError(
        "MASTER_KEY_INVALID",
        "MASTER_ENCRYPTION_KEY must not contain a comma (OLD_MASTER_KEY separates keys with commas); generate one with: openssl rand -hex 32",
        "MASTER_ENCRYPTION_KEY",
      );
    }
    const previous = (env.OLD_MASTER_KEY ?? "")
      .split(",")
      .map((secret, index) => ({ secret: secret.trim(), entry: index + 1 }))
      .filter(({ secret }) => secret.length > 0);
    return Keyring.#build(current, previous, rootSalt);
  }

  /** Every key, current first. */
  get all(): readonly MasterKey[] {
    return [this.current, ...this.previous];
  }

  /**
   * The key whose v2 id is `keyId`: the hinted key first (`options.hint`,
   * else the one useKeyIdHints recorded for this id), then the
   * current key, then previous keys in order, deriving roots lazily and
   * stopping at the match. A value under previous key k costs the roots of
   * the keys tried before it and its own.
   */
  async findByKeyId(keyId: string, options: FindKeyOptions = {}): Promise<MasterKey | undefined> {
    const keys = this.all;
    const hint = options.hint ?? this.hintFor(keyId);
    const hinted = hint === undefined ? undefined : keys[hint];
    const order = hinted ? [hinted, ...keys.filter((key) => key !== hinted)] : keys;
    for (const key of order) {
      if ((await key.keyId()) === keyId) return key;
    }
    return undefined;
  }

  /**
   * The error for a value no configured key opens: naming the unusable
   * OLD_MASTER_KEY entries (number and code, never a value) when there are
   * any, since one of them may be the key it needs; otherwise `fallback`.
   */
  keyNotFound(fallback: CryptoError): CryptoError {
    const [first] = this.invalidPrevious;
    if (!first) return fallback;
    const entries = this.invalidPrevious.map(({ entry, code }) => `${oldKeyEntrySource(entry)}: ${code}`).join(", ");
    return new CryptoError(
      first.code,
      `${fallback.message}; unusable keys that may be the one it needs: ${entries}`,
      oldKeyEntrySource(first.entry),
    );
  }

  toJSON(): { current: string; previous: string[]; invalidPrevious: InvalidKeyEntry[] } {
    return {
      current: this.current.source,
      previous: this.previous.map((k) => k.source),
      invalidPrevious: [...this.invalidPrevious],
    };
  }

  /** "Keyring(current=<source>, previous=[<source>, …])": never a secret. */
  toString(): string {
    return `Keyring(current=${this.current.source}, previous=[${this.previous.map((k) => k.source).join(", ")}])`;
  }
}
