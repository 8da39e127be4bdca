/**
 * Display hints for secrets, e.g. "sk_live_…4242": enough for a person to
 * recognise which key is stored, never enough to use it.
 */

/** Characters of the end of a secret that a hint shows. */
const VISIBLE_SUFFIX = 4;
/** Secrets shorter than this show no characters at all. */
const MIN_LENGTH_FOR_SUFFIX = 12;
/** A recognisable prefix ("sk_live_", "ghp_", "sk-ant-") is shown only if this short. */
const MAX_PREFIX = 8;

/** A masked hint of `secret`: its well-known prefix, an ellipsis, its last 4 characters. */
export function maskSecret(secret: string): string {
  if (secret.length < MIN_LENGTH_FOR_SUFFIX) return "…";
  const prefixMatch = /^[A-Za-z]+(?:[_-][A-Za-z]+)*[_-]/.exec(secret.slice(0, MAX_PREFIX + 1));
  const prefix = prefixMatch && prefixMatch[0].length <= MAX_PREFIX ? prefixMatch[0] : "";
  // Never let prefix and suffix together reveal more than half of the secret.
  const shownPrefix = prefix.length + VISIBLE_SUFFIX <= secret.length / 2 ? prefix : "";
  return `${shownPrefix}…${secret.slice(-VISIBLE_SUFFIX)}`;
}
