/**
 * Errors that reach clients: a ConvexError whose data is an AppErrorData,
 * `{ code, message }` plus fields that depend on the code (`retryAt` for
 * RATE_LIMITED, `reason` and `variable` for ENCRYPTION_UNAVAILABLE, ...).
 * Codes, fields and what the UI should do with each are in docs/api.md;
 * messages never contain a secret, plaintext, ciphertext or unknown input.
 *
 * This file is the dashboard's error contract: it imports nothing
 * server-only (only `convex/values` and the pure lib/errors and
 * providers/errors, which import nothing), so a frontend can import its
 * types and `appErrorData` directly. The lower layers' errors (CryptoError,
 * ProviderError) are mapped here and know nothing of this file.
 */
import { ConvexError } from "convex/values";
import { isCryptoError, type CryptoError, type CryptoErrorCode } from "./lib/errors";
import type { ProviderError, ProviderErrorKind } from "./providers/errors";

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
  | "CONFLICT"
  | "LIMIT_REACHED"
  | "INTERNAL";

/** Every code, at run time (a Record, so a code added to ErrorCode must be added here too). */
const ERROR_CODES: Record<ErrorCode, true> = {
  UNAUTHENTICATED: true,
  FORBIDDEN: true,
  NOT_FOUND: true,
  INVALID_ARGUMENT: true,
  INVALID_CREDENTIALS: true,
  ENCRYPTION_UNAVAILABLE: true,
  DECRYPTION_FAILED: true,
  PROVIDER_ERROR: true,
  RATE_LIMITED: true,
  CONFLICT: true,
  LIMIT_REACHED: true,
  INTERNAL: true,
};

/** Every error code, e.g. for a client's exhaustive handling table. */
export const errorCodes = Object.keys(ERROR_CODES) as ErrorCode[];

/** The deployment variables a configuration error can name. */
export type ConfigurationVariable = "MASTER_ENCRYPTION_KEY" | "OLD_MASTER_KEY";

/**
 * Why encryption is unavailable because of a master key variable: the
 * encryption core's code, or MASTER_KEY_WEAK (storedSecrets/encryption.ts: a key that looks
 * non-random, refused while nothing is encrypted under it yet).
 */
export type ConfigurationReason = "MASTER_KEY_MISSING" | "MASTER_KEY_TOO_SHORT" | "MASTER_KEY_INVALID" | "MASTER_KEY_WEAK";

/** Why a stored secret did not decrypt: the encryption core's code. */
export type DecryptionReason =
  | "MALFORMED_CIPHERTEXT"
  | "UNSUPPORTED_VERSION"
  | "UNKNOWN_KEY_ID"
  | "DECRYPTION_FAILED"
  | "NOT_CIPHERTEXT"
  | "VALUE_TOO_LARGE"
  | "LEGACY_FORMAT_RETIRED";

/** Why an argument was refused by the encryption core (other INVALID_ARGUMENTs have no reason). */
export type InvalidArgumentReason = "INVALID_ARGUMENT";

/** The fields each code adds to `{ code, message }`; codes not listed add none. */
interface ErrorDetails {
  INVALID_ARGUMENT: {
    /** The argument that was refused, by its name in the function's arguments (never its value). */
    field?: string;
    /** Set when the encryption core refused the value. */
    reason?: InvalidArgumentReason;
  };
  ENCRYPTION_UNAVAILABLE:
    | {
        reason: ConfigurationReason;
        /** The deployment variable an administrator must set or fix. */
        variable: ConfigurationVariable;
      }
    | {
        /** The deployment's stored root salt (encryptionSettings) is damaged, or missing while data needs it: restore it from a backup. */
        reason: "ROOT_SALT_INVALID" | "ROOT_SALT_MISSING";
      };
  DECRYPTION_FAILED: {
    /** The encryption core's code; absent when the failure happened after decryption. */
    reason?: DecryptionReason;
  };
  PROVIDER_ERROR: {
    /** Display name of the third-party service, e.g. "OpenAI". */
    service: string;
    reason: ProviderErrorKind;
    /** The service's HTTP status, when it answered. */
    status?: number;
  };
  RATE_LIMITED: {
    /** When to try again, in milliseconds since the epoch. */
    retryAt: number;
  };
  LIMIT_REACHED: {
    /** Which per-user cap refused the call. */
    reason: UserLimit;
    /** The cap: the most the user may have. */
    limit: number;
  };
}

/** The per-user caps (access/caps.ts): projects a user owns, connections across the projects they own. */
export type UserLimit = "PROJECTS_PER_USER" | "CONNECTIONS_PER_USER";

/** The extra fields of code `C`. */
export type ErrorDetailsOf<C extends ErrorCode> = C extends keyof ErrorDetails ? ErrorDetails[C] : Record<never, never>;

type Flatten<T> = { [K in keyof T]: T[K] } & {};

/** The data of a client-facing error with code `C`. */
export type AppErrorDataOf<C extends ErrorCode> = Flatten<{ code: C; message: string } & ErrorDetailsOf<C>>;

/** The data of every client-facing error: a union discriminated by `code`. */
export type AppErrorData = { [C in ErrorCode]: AppErrorDataOf<C> }[ErrorCode];

/** The details argument of appError: required when code `C` has a required field. */
type DetailsArgument<C extends ErrorCode> = C extends keyof ErrorDetails
  ? Record<never, never> extends ErrorDetails[C]
    ? [details?: ErrorDetails[C]]
    : [details: ErrorDetails[C]]
  : [details?: { [field: string]: never }];

/** A client-facing error with a stable code (and the fields that code carries). */
export function appError<C extends ErrorCode>(
  code: C,
  message: string,
  ...[details]: DetailsArgument<C>
): ConvexError<AppErrorData> {
  const data: Record<string, string | number> = { code, message };
  // Convex values cannot hold undefined: leave absent fields out.
  for (const [key, value] of Object.entries(details ?? {})) {
    if (value !== undefined) data[key] = value as string | number;
  }
  return new ConvexError(data as AppErrorData);
}

/**
 * What each encryption-core code becomes for a client. A missing or bad
 * master key is an operator problem (ENCRYPTION_UNAVAILABLE naming the
 * variable to fix), a bad argument is INVALID_ARGUMENT, and anything else
 * is DECRYPTION_FAILED. A Record: a new core code must be mapped here.
 */
const CRYPTO_ERROR_MAPPING: Record<
  CryptoErrorCode,
  | { code: "ENCRYPTION_UNAVAILABLE"; reason: ConfigurationReason | "ROOT_SALT_INVALID" }
  | { code: "DECRYPTION_FAILED"; reason: DecryptionReason }
  | { code: "INVALID_ARGUMENT"; reason: InvalidArgumentReason }
> = {
  MASTER_KEY_MISSING: { code: "ENCRYPTION_UNAVAILABLE", reason: "MASTER_KEY_MISSING" },
  MASTER_KEY_TOO_SHORT: { code: "ENCRYPTION_UNAVAILABLE", reason: "MASTER_KEY_TOO_SHORT" },
  MASTER_KEY_INVALID: { code: "ENCRYPTION_UNAVAILABLE", reason: "MASTER_KEY_INVALID" },
  ROOT_SALT_INVALID: { code: "ENCRYPTION_UNAVAILABLE", reason: "ROOT_SALT_INVALID" },
  // Encrypting too large a value is INVALID_ARGUMENT in storedSecrets/encryption.ts; here it is a stored value too large to read.
  VALUE_TOO_LARGE: { code: "DECRYPTION_FAILED", reason: "VALUE_TOO_LARGE" },
  MALFORMED_CIPHERTEXT: { code: "DECRYPTION_FAILED", reason: "MALFORMED_CIPHERTEXT" },
  UNSUPPORTED_VERSION: { code: "DECRYPTION_FAILED", reason: "UNSUPPORTED_VERSION" },
  UNKNOWN_KEY_ID: { code: "DECRYPTION_FAILED", reason: "UNKNOWN_KEY_ID" },
  DECRYPTION_FAILED: { code: "DECRYPTION_FAILED", reason: "DECRYPTION_FAILED" },
  NOT_CIPHERTEXT: { code: "DECRYPTION_FAILED", reason: "NOT_CIPHERTEXT" },
  LEGACY_FORMAT_RETIRED: { code: "DECRYPTION_FAILED", reason: "LEGACY_FORMAT_RETIRED" },
  INVALID_ARGUMENT: { code: "INVALID_ARGUMENT", reason: "INVALID_ARGUMENT" },
};

/**
 * The variable a configuration error is about. A too-short key is either
 * the current key or an OLD_MASTER_KEY entry (a value only an unusable
 * entry could open fails with that entry's code); the core names the entry
 * in the error's `source`, "OLD_MASTER_KEY (entry N)". Every other code is
 * about MASTER_ENCRYPTION_KEY.
 */
function configurationVariableOf(error: CryptoError): ConfigurationVariable {
  // The core sets `source` to where the key was configured: "MASTER_ENCRYPTION_KEY" or "OLD_MASTER_KEY (entry N)".
  return error.source?.startsWith("OLD_MASTER_KEY") ? "OLD_MASTER_KEY" : "MASTER_ENCRYPTION_KEY";
}

/**
 * Maps a failure of the encryption core to a client-facing error (see
 * CRYPTO_ERROR_MAPPING), with the core's code as `reason`. The core's own
 * message (which may name a master key's id, a fingerprint worth nothing
 * to a client) stays server-side, except for INVALID_ARGUMENT, whose
 * message describes the argument; the CryptoError stays the new error's
 * `cause`, for server logs. Anything that is not a crypto error is rethrown
 * unchanged.
 */
export function toAppError(error: unknown): never {
  if (!isCryptoError(error)) throw error;
  throw withCause(cryptoAppError(error), error);
}

/** The client-facing error for a CryptoError (see toAppError). */
function cryptoAppError(error: CryptoError): ConvexError<AppErrorData> {
  const mapped = CRYPTO_ERROR_MAPPING[error.code];
  switch (mapped.code) {
    case "ENCRYPTION_UNAVAILABLE": {
      if (mapped.reason === "ROOT_SALT_INVALID") {
        return appError("ENCRYPTION_UNAVAILABLE", "Encryption is not usable on this deployment: its stored root salt is damaged (ROOT_SALT_INVALID)", {
          reason: mapped.reason,
        });
      }
      const variable = configurationVariableOf(error);
      if (variable === "OLD_MASTER_KEY") {
        // Only the decryption that may need this entry fails; the message names the entry, never its value.
        return appError(
          "ENCRYPTION_UNAVAILABLE",
          `This secret needs a master key that is not usable: ${error.source ?? "OLD_MASTER_KEY"} is invalid (${mapped.reason}) and may be that key`,
          { reason: mapped.reason, variable },
        );
      }
      return appError("ENCRYPTION_UNAVAILABLE", `Encryption is not configured on this deployment: ${variable} (${mapped.reason})`, {
        reason: mapped.reason,
        variable,
      });
    }
    case "INVALID_ARGUMENT":
      return appError("INVALID_ARGUMENT", error.message, { reason: mapped.reason });
    case "DECRYPTION_FAILED":
      return appError("DECRYPTION_FAILED", `A stored secret could not be decrypted (${mapped.reason})`, {
        reason: mapped.reason,
      });
  }
}

/**
 * A client-facing PROVIDER_ERROR for a ProviderError: the same safe message,
 * the service, the kind as `reason`, the HTTP status. The ProviderError stays
 * the new error's `cause`, for server logs only (a client gets `data` and
 * the message, never the cause).
 */
export function providerAppError(error: ProviderError): ConvexError<AppErrorData> {
  const mapped = appError("PROVIDER_ERROR", error.message, {
    service: error.service,
    reason: error.kind,
    ...(error.status === null ? {} : { status: error.status }),
  });
  return withCause(mapped, error);
}

/**
 * `error` with `cause` set as the Error constructor sets it (not
 * enumerable): server logs show it; a client gets only the ConvexError's
 * message and data.
 */
function withCause<E extends Error>(error: E, cause: Error): E {
  Object.defineProperty(error, "cause", { value: cause, enumerable: false, writable: true, configurable: true });
  return error;
}

/**
 * The name of `error`'s class ("SyntaxError", "TypeError"), for server logs:
 * never its message, which can quote what the failing code read (a
 * provider's answer, a credential). "Error" when it has no plain name.
 */
export function errorName(error: unknown): string {
  const name = typeof error === "object" && error !== null ? (error as { name?: unknown }).name : undefined;
  return typeof name === "string" && /^\w{1,40}$/.test(name) ? name : "Error";
}

/**
 * The client-facing error for `data` that was recorded before it was thrown
 * (a sync stores a connection's outcome first: sync/run.ts), with `cause`
 * an Error holding only `causeName` (see errorName), for server logs.
 */
export function recordedAppError(data: AppErrorData, causeName: string): ConvexError<AppErrorData> {
  return withCause(new ConvexError<AppErrorData>({ ...data }), new Error(causeName));
}

/**
 * Whether `data` is the data of a client-facing error, judged by its shape
 * alone: an object whose `code` is one of errorCodes and whose `message` is
 * a string. For a ConvexError's `data` whichever copy of `convex` made it.
 */
export function isAppErrorData(data: unknown): data is AppErrorData {
  if (typeof data !== "object" || data === null) return false;
  const { code, message } = data as { code?: unknown; message?: unknown };
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code) && typeof message === "string";
}

/**
 * Whether `error` is a ConvexError, by `instanceof` or, when it was made by
 * another copy of the `convex` package (the dashboard's repository resolving
 * its own), by the marker every copy sets: Symbol.for("ConvexError"), or the
 * name "ConvexError" with a `data` field.
 */
function isConvexErrorLike(error: unknown): error is { data: unknown } {
  if (error instanceof ConvexError) return true;
  if (typeof error !== "object" || error === null || !("data" in error)) return false;
  return (error as Record<symbol, unknown>)[Symbol.for("ConvexError")] === true || (error as { name?: unknown }).name === "ConvexError";
}

/**
 * The data of a client-facing error (see appError), or null for any other
 * error. For servers and clients alike; recognises the error by its shape
 * (isConvexErrorLike, isAppErrorData), not only by `instanceof ConvexError`,
 * which fails when the caller's `convex` is another copy than this file's.
 */
export function appErrorData(error: unknown): AppErrorData | null {
  if (!isConvexErrorLike(error)) return null;
  return isAppErrorData(error.data) ? error.data : null;
}

/** The code of a client-facing error (see appError), or null for any other error. */
export function appErrorCode(error: unknown): ErrorCode | null {
  return appErrorData(error)?.code ?? null;
}
