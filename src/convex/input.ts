/**
 * Cleaning of free-text arguments (names) before they are stored: trimmed,
 * non-empty, bounded. Argument validators check types; this checks content.
 */
import { appError } from "./errors";

/** Longest accepted project, connection or API key name. */
export const MAX_NAME_LENGTH = 100;

/** `value` trimmed; INVALID_ARGUMENT when empty or longer than MAX_NAME_LENGTH. */
export function cleanName(value: string, what: string): string {
  const name = value.trim();
  if (!name) throw appError("INVALID_ARGUMENT", `${what} must not be empty`);
  if (name.length > MAX_NAME_LENGTH) {
    throw appError("INVALID_ARGUMENT", `${what} must be at most ${MAX_NAME_LENGTH} characters`);
  }
  return name;
}

/**
 * An email in the one form Dashtray stores and compares: trimmed and
 * lowercased, so that "Bob@Corp.com " and "bob@corp.com" are the same user.
 */
export function normalizeEmail(value: string): string {
  return value.trim().toLowerCase();
}
