/**
 * Cleaning of free-text arguments (names) before they are stored: trimmed,
 * non-empty, bounded, and free of characters that change how text around
 * them is displayed or parsed. Argument validators check types; this checks content.
 */
import { appError } from "../errors";

/** Longest accepted project, connection or API key name. */
export const MAX_NAME_LENGTH = 100;

/**
 * Characters a name may not contain: control characters (NUL, newlines, ESC
 * that starts ANSI escapes, C1 controls), line and paragraph separators, and
 * bidirectional embeddings, overrides, isolates and marks, which reorder
 * the text shown around a name (U+202A–202E, U+2066–2069, U+200E, U+200F, U+061C).
 */
const FORBIDDEN_IN_NAME = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/u;

/**
 * Characters that show nothing on their own: spaces and other separators,
 * format characters (zero-width space, joiners, word joiner, BOM, soft
 * hyphen...), combining marks, and the Hangul fillers that render blank.
 * A name must have at least one character outside this set.
 */
const INVISIBLE = /[\p{Z}\p{Cf}\p{M}\u115F\u1160\u3164\uFFA0]/gu;

/**
 * `value` trimmed; INVALID_ARGUMENT when empty, longer than MAX_NAME_LENGTH,
 * holding a control or bidi character, or made only of invisible characters.
 */
export function cleanName(value: string, what: string): string {
  const name = value.trim();
  if (!name) throw appError("INVALID_ARGUMENT", `${what} must not be empty`);
  if (name.length > MAX_NAME_LENGTH) {
    throw appError("INVALID_ARGUMENT", `${what} must be at most ${MAX_NAME_LENGTH} characters`);
  }
  if (FORBIDDEN_IN_NAME.test(name)) {
    throw appError("INVALID_ARGUMENT", `${what} must not contain control characters, line breaks or bidirectional controls`);
  }
  if (name.replace(INVISIBLE, "") === "") {
    throw appError("INVALID_ARGUMENT", `${what} must contain a visible character`);
  }
  return name;
}

/** Every control, line-breaking or bidi character (FORBIDDEN_IN_NAME, for replacing). */
const FORBIDDEN_IN_NAME_ALL = new RegExp(FORBIDDEN_IN_NAME.source, "gu");

/**
 * A display name from the identity provider, made safe to store and show
 * like the names cleanName accepts: control, line-breaking and bidi
 * characters (ANSI escapes start with one) become spaces, runs of invisible
 * characters (zero-width, joiners, combining marks, spaces) shrink to one
 * space, the result is trimmed and cut to MAX_NAME_LENGTH characters.
 * Undefined when nothing visible is left. It never refuses: the claim is
 * not the user's input to this call, and a sign-in must not fail on it.
 */
export function sanitizeDisplayName(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const spaced = value.replace(FORBIDDEN_IN_NAME_ALL, " ").replace(/[\p{Z}\p{Cf}\p{M}\u115F\u1160\u3164\uFFA0]+/gu, (run) =>
    // Keep a lone combining mark or joiner that belongs to a visible letter; collapse longer runs.
    run.length === 1 && !/\p{Z}/u.test(run) ? run : " ",
  );
  let name = "";
  for (const char of spaced.trim()) {
    if (name.length + char.length > MAX_NAME_LENGTH) break;
    name += char;
  }
  name = name.trim();
  return name.replace(INVISIBLE, "") === "" ? undefined : name;
}

/**
 * An email in the one form Dashtray stores and compares: trimmed, with ASCII
 * letters lowercased and every other character kept as it is. Full Unicode
 * lowercasing would merge different mailboxes: "\u212Aate@corp.example"
 * (KELVIN SIGN) lowercases to "kate@corp.example". ASCII case is the only
 * folding mail providers agree on, so only it is folded.
 */
export function normalizeEmail(value: string): string {
  return value.trim().replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}

/** Longest accepted email address (RFC 5321 path limit). */
export const MAX_EMAIL_LENGTH = 254;

/**
 * An email address to invite, normalised (normalizeEmail). INVALID_ARGUMENT
 * unless it is printable ASCII shaped like local@domain.tld: a non-ASCII
 * address could be a look-alike of another one ("ｋate", "kаte" with a
 * Cyrillic a), which an owner cannot tell apart on screen.
 */
export function cleanInviteEmail(value: string): string {
  const email = normalizeEmail(value);
  if (email.length > MAX_EMAIL_LENGTH || !/^[\x21-\x7E]+$/.test(email)) {
    throw appError("INVALID_ARGUMENT", "Give an email address of printable ASCII characters (at most 254)");
  }
  if (!/^[^@]+@[^@.]+(\.[^@.]+)+$/.test(email)) throw appError("INVALID_ARGUMENT", "Give an email address like name@example.com");
  return email;
}
