/**
 * Display hints for secrets, e.g. "sk_live_…4242": enough for a person to
 * recognise which key is stored, never enough to use it or to narrow a
 * search for it.
 *
 * A hint shows the secret's well-known type marker (from a fixed list, so
 * random characters are never mistaken for one) and at most the last 4
 * characters of the rest, and only when the rest is at least 16 characters
 * long: the suffix never exceeds a quarter of the secret's non-marker part.
 */

/**
 * The hint shown while a secret's hint is unknown (rows of the original
 * Dashtray have none; computing one needs the plaintext, which only the
 * upgrade job decrypts: upgrade/defaults.ts).
 */
export const UNKNOWN_HINT = "…";

/** Type markers of the keys Dashtray stores, longest first; they identify a kind of key, not a key. */
const KNOWN_PREFIXES = [
  "github_pat_",
  "sk-proj-",
  "sk_live_",
  "sk_test_",
  "rk_live_",
  "rk_test_",
  "dt_live_",
  "sk-ant-",
  "ghp_",
  "gho_",
  "ghu_",
  "ghs_",
  "ghr_",
  "sk-",
] as const;

/** Characters of the end of a secret a hint shows, at most. */
export const HINT_SUFFIX_LENGTH = 4;
/** Shortest non-marker part that shows a suffix: the suffix is then at most a quarter of it. */
export const MIN_LENGTH_FOR_SUFFIX = 4 * HINT_SUFFIX_LENGTH;

/** A masked hint of `secret`: its known type marker, an ellipsis, and the last 4 characters of a long enough rest. */
export function maskSecret(secret: string): string {
  const prefix = KNOWN_PREFIXES.find((marker) => secret.startsWith(marker)) ?? "";
  const rest = secret.slice(prefix.length);
  const suffix = rest.length >= MIN_LENGTH_FOR_SUFFIX ? rest.slice(-HINT_SUFFIX_LENGTH) : "";
  return `${prefix}…${suffix}`;
}
