/**
 * Checks on values read from a provider's answer or from stored
 * credentials: each returns the value with its type, or throws a
 * ProviderError (bad_response, or invalid_request for a missing credential)
 * whose message says nothing of the value.
 */
import type { Credentials } from "../validators";
import { ProviderError } from "./errors";

/** `value` as a plain object, or a bad_response ProviderError. */
export function expectObject(service: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProviderError(service, "bad_response");
  }
  return value as Record<string, unknown>;
}

/** `value` as an array, or a bad_response ProviderError. */
export function expectArray(service: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new ProviderError(service, "bad_response");
  return value;
}

/** `value` as a finite number, or a bad_response ProviderError. */
export function expectNumber(service: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new ProviderError(service, "bad_response");
  return value;
}

/** `value` as a string, or a bad_response ProviderError. */
export function expectString(service: string, value: unknown): string {
  if (typeof value !== "string") throw new ProviderError(service, "bad_response");
  return value;
}

/**
 * A credential field's value. Credentials are validated when written, so a
 * missing field means the row predates a field change: invalid_request.
 */
export function credentialValue(service: string, credentials: Credentials, field: string): string {
  const value = credentials[field];
  if (!value) throw new ProviderError(service, "invalid_request");
  return value;
}
