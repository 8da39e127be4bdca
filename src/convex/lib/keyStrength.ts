/**
 * A shape check for master keys: does a key look like the output of a
 * random generator (`openssl rand -hex 32`), or like something a person
 * typed? It cannot prove a key random; it catches keys that obviously are
 * not, with rules chosen so that generated keys never trip them:
 *
 * - "repeated-run": 8 or more identical characters in a row ("aaaaaaaa");
 * - "sequence": 8 or more characters counting up or down by one ("01234567", "hgfedcba");
 * - "periodic": the whole key is a shorter block repeated ("abc123abc123…");
 * - "low-variety": fewer than 8 distinct characters;
 * - "low-entropy": under 64 bits by the key's own character frequencies
 *   (length × Shannon entropy per character);
 * - "phrase": whitespace, or a word people put in keys ("password",
 *   "secret", "master", "changeme", …): a passphrase, not a generated key.
 *
 * Calibration (200,000 keys of each kind): `openssl rand -hex 16` (32 hex
 * characters, the shortest accepted length) never had fewer than 9
 * distinct characters or 91 bits by this estimate; `-hex 32` never under 12
 * and 218 bits; base64 keys never under 17 and 123 bits. A run or sequence
 * of 8 in 64 random hex characters has a probability below 1e-6.
 *
 * No Convex imports: the Convex layer (storedSecrets/encryption.ts) decides what a weak key
 * means for a deployment.
 */

/** Why a key looks non-random (see the module comment). */
export type WeakKeyReason = "repeated-run" | "sequence" | "periodic" | "low-variety" | "low-entropy" | "phrase";

/** Length of a run of one character, or of a sequence, that makes a key weak. */
const RUN_LENGTH = 8;
/** A key with fewer distinct characters is weak. */
const MIN_DISTINCT_CHARACTERS = 8;
/** A key under this many bits (length × Shannon entropy per character) is weak. */
const MIN_ESTIMATED_BITS = 64;
/** Words (5+ letters, so random keys practically never contain them) that mark a typed key. */
const PHRASE_WORDS = [
  "password",
  "passwd",
  "secret",
  "master",
  "changeme",
  "default",
  "letmein",
  "qwerty",
  "dashtray",
  "encryption",
  "example",
  "production",
  "staging",
  "development",
  "admin",
] as const;

function hasRun(characters: readonly string[]): boolean {
  let run = 1;
  for (let i = 1; i < characters.length; i++) {
    run = characters[i] === characters[i - 1] ? run + 1 : 1;
    if (run >= RUN_LENGTH) return true;
  }
  return false;
}

function hasSequence(characters: readonly string[]): boolean {
  let up = 1;
  let down = 1;
  for (let i = 1; i < characters.length; i++) {
    const step = (characters[i]?.codePointAt(0) ?? 0) - (characters[i - 1]?.codePointAt(0) ?? 0);
    up = step === 1 ? up + 1 : 1;
    down = step === -1 ? down + 1 : 1;
    if (up >= RUN_LENGTH || down >= RUN_LENGTH) return true;
  }
  return false;
}

/** Whether the key is a block of at most half its length, repeated (the last copy may be cut short). */
function isPeriodic(characters: readonly string[]): boolean {
  for (let period = 1; period <= characters.length / 2; period++) {
    let repeats = true;
    for (let i = period; i < characters.length && repeats; i++) repeats = characters[i] === characters[i - period];
    if (repeats) return true;
  }
  return false;
}

/** length × Shannon entropy of the key's own character frequencies, in bits. */
function estimatedBits(characters: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const character of characters) counts.set(character, (counts.get(character) ?? 0) + 1);
  let perCharacter = 0;
  for (const count of counts.values()) {
    const p = count / characters.length;
    perCharacter -= p * Math.log2(p);
  }
  return perCharacter * characters.length;
}

/**
 * The reasons `key` looks non-random; empty when it looks like a generated
 * key. Never returns or logs the key.
 */
export function weakKeyReasons(key: string): WeakKeyReason[] {
  const characters = [...key];
  const reasons: WeakKeyReason[] = [];
  if (hasRun(characters)) reasons.push("repeated-run");
  if (hasSequence(characters)) reasons.push("sequence");
  if (isPeriodic(characters)) reasons.push("periodic");
  if (new Set(characters).size < MIN_DISTINCT_CHARACTERS) reasons.push("low-variety");
  if (estimatedBits(characters) < MIN_ESTIMATED_BITS) reasons.push("low-entropy");
  const lower = key.toLowerCase();
  if (/\s/.test(key) || PHRASE_WORDS.some((word) => lower.includes(word))) reasons.push("phrase");
  return reasons;
}
