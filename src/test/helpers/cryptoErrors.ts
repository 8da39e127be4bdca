/** Assertions on CryptoError failures shared by the encryption-core tests. */
import { expect } from "vitest";
import { CryptoError, isCryptoError, type CryptoErrorCode } from "../../convex/lib/errors";

/**
 * Awaits `work`, expects it to fail with a CryptoError of `code`, and checks
 * that neither the message nor the error's serialisations contain any of
 * `secrets` (plaintext, master keys, ciphertext). Returns the error.
 */
export async function expectCryptoError(
  work: Promise<unknown>,
  code: CryptoErrorCode,
  secrets: readonly string[] = [],
): Promise<CryptoError> {
  let caught: unknown = undefined;
  try {
    await work;
  } catch (error) {
    caught = error;
  }
  if (!isCryptoError(caught)) throw new Error(`expected a CryptoError ${code}, got ${String(caught)}`);
  expect(caught.code).toBe(code);
  expectNoSecrets(caught, secrets);
  return caught;
}

/** Checks that an error's message, string form and JSON form contain none of `secrets`. */
export function expectNoSecrets(error: Error, secrets: readonly string[]): void {
  const renderings = [error.message, String(error), JSON.stringify(error), error.stack ?? ""];
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    for (const rendering of renderings) expect(rendering).not.toContain(secret);
  }
}
