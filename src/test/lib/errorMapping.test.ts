import { ConvexError } from "convex/values";
import { describe, expect, test } from "vitest";
import { toAppError, type ErrorCode } from "../../convex/errors";
import { CryptoError, type CryptoErrorCode } from "../../convex/lib/errors";

function mapped(error: unknown): unknown {
  try {
    toAppError(error);
  } catch (thrown) {
    return thrown;
  }
  throw new Error("toAppError returned");
}

describe("toAppError (CryptoError -> ConvexError)", () => {
  test.each([
    ["MASTER_KEY_MISSING", "ENCRYPTION_UNAVAILABLE"],
    ["MASTER_KEY_TOO_SHORT", "ENCRYPTION_UNAVAILABLE"],
    ["MASTER_KEY_INVALID", "ENCRYPTION_UNAVAILABLE"],
    ["ROOT_SALT_INVALID", "ENCRYPTION_UNAVAILABLE"],
    ["VALUE_TOO_LARGE", "DECRYPTION_FAILED"],
    ["INVALID_ARGUMENT", "INVALID_ARGUMENT"],
    ["MALFORMED_CIPHERTEXT", "DECRYPTION_FAILED"],
    ["UNSUPPORTED_VERSION", "DECRYPTION_FAILED"],
    ["UNKNOWN_KEY_ID", "DECRYPTION_FAILED"],
    ["DECRYPTION_FAILED", "DECRYPTION_FAILED"],
    ["NOT_CIPHERTEXT", "DECRYPTION_FAILED"],
  ] as const satisfies readonly (readonly [CryptoErrorCode, ErrorCode])[])("%s -> %s", (code, appCode) => {
    const error = mapped(new CryptoError(code, 'core message naming key "k3yId"'));
    expect(error).toBeInstanceOf(ConvexError);
    const data = (error as ConvexError<{ code: ErrorCode; message: string }>).data;
    expect(data.code).toBe(appCode);
    // Clients see which check failed; only a bad argument keeps the core's own message, so a key id never reaches them.
    expect(data.message).toContain(code === "INVALID_ARGUMENT" ? "core message" : code);
    if (code !== "INVALID_ARGUMENT") expect(data.message).not.toContain("k3yId");
    // The core's error stays the cause, for server logs only: not enumerable, not in the data a client gets.
    expect((error as Error).cause).toMatchObject({ name: "CryptoError", code });
    expect(Object.keys(error as object)).not.toContain("cause");
  });

  test("other errors are rethrown unchanged", () => {
    const other = new TypeError("not crypto");
    expect(mapped(other)).toBe(other);
  });
});
