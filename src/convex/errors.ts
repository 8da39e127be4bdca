/**
 * Errors that reach clients: a ConvexError whose data is `{ code, message }`.
 * Codes are stable and listed in docs/api.md; messages never contain a
 * secret, plaintext or ciphertext.
 */
import { ConvexError } from "convex/values";
import { isCryptoError } from "./lib/errors";

export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "INVALID_ARGUMENT"
  | "INVALID_CREDENTIALS"
  | "ENCRYPTION_UNAVAILABLE"
  | "DECRYPTION_FAILED"
  | "PROVIDER_ERROR"
  | "RATE_LIMITED"
  | "CONFLICT";

export interface AppErrorData {
  code: ErrorCode;
  message: string;
}

/** A client-facing error with a stable code. */
export function appError(code: ErrorCode, message: string): ConvexError<{ code: ErrorCode; message: string }> {
  return new ConvexError({ code, message });
}

/**
 * Maps a failure of the encryption core to a client-facing error: a missing
 * or weak master key, or a bad root salt, is an operator problem
 * (ENCRYPTION_UNAVAILABLE; so is a value only an unusable OLD_MASTER_KEY
 * entry could open: its code is that entry's, MASTER_KEY_TOO_SHORT), a bad
 * argument is INVALID_ARGUMENT, and any other crypto failure is
 * DECRYPTION_FAILED naming only the core's code. The core's own message
 * (which may name a master key's id, a fingerprint worth nothing to a
 * client) stays server-side. Anything that is not a crypto error is
 * rethrown unchanged.
 */
export function toAppError(error: unknown): never {
  if (isCryptoError(error)) {
    if (
      error.code === "MASTER_KEY_MISSING" ||
      error.code === "MASTER_KEY_TOO_SHORT" ||
      error.code === "MASTER_KEY_INVALID" ||
      error.code === "ROOT_SALT_INVALID"
    ) {
      throw appError("ENCRYPTION_UNAVAILABLE", `Encryption is not configured on this deployment (${error.code})`);
    }
    if (error.code === "INVALID_ARGUMENT") throw appError("INVALID_ARGUMENT", error.message);
    throw appError("DECRYPTION_FAILED", `A stored secret could not be decrypted (${error.code})`);
  }
  throw error;
}

/** The code of a client-facing error (see appError), or null for any other error. */
export function appErrorCode(error: unknown): ErrorCode | null {
  if (!(error instanceof ConvexError)) return null;
  const data: unknown = error.data;
  if (typeof data !== "object" || data === null || !("code" in data) || typeof data.code !== "string") return null;
  return data.code as ErrorCode;
}
