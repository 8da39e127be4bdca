/**
 * JSON over HTTP for integrations and AI providers: base URLs overridable by
 * environment variables (tests point them at a local server), a timeout on
 * every request, and every failure turned into a ProviderError. Nothing here
 * logs, and no header or body ever reaches an error message.
 */
import { env } from "../_generated/server";
import type { Credentials } from "../validators";
import { ProviderError, kindForStatus } from "./providerError";

/** Default time a provider has to answer, headers and body included. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

/** Largest response body accepted, in bytes (real answers are a few kilobytes); reading stops there. */
export const MAX_RESPONSE_BYTES = 1_000_000;

/** The base URL from `envName` if set, else `fallback`; without a trailing slash. */
export function baseUrl(envName: string, fallback: string): string {
  const configured = env[envName]?.trim();
  return (configured || fallback).replace(/\/+$/, "");
}

/** Request timeout in ms: PROVIDER_TIMEOUT_MS if it is a positive number, else the default. */
export function providerTimeoutMs(): number {
  const configured = Number(env.PROVIDER_TIMEOUT_MS);
  return Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_PROVIDER_TIMEOUT_MS;
}

function timeoutSignal(ms: number): AbortSignal {
  if (typeof AbortSignal.timeout === "function") return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException("request timed out", "TimeoutError")), ms);
  return controller.signal;
}

/**
 * Sends one request and returns its parsed JSON body. Throws a ProviderError:
 * timeout, unavailable (network failure or 5xx), unauthorized, rate_limited,
 * not_found, redirected (3xx, never followed), invalid_request (other
 * statuses), bad_response (not JSON, or a body over MAX_RESPONSE_BYTES:
 * refused from its Content-Length, or as soon as that many bytes arrived).
 */
export async function requestJson(service: string, url: string, init: RequestInit): Promise<unknown> {
  const signal = timeoutSignal(providerTimeoutMs());
  let status: number | null = null;
  try {
    // A redirect is not followed: it could carry the credential headers to another host.
    const response = await fetch(url, { ...init, redirect: "manual", signal });
    status = response.status;
    const failure = kindForStatus(status);
    if (failure) {
      // Error bodies can echo the credential: discard them unread.
      await response.body?.cancel().catch(() => undefined);
      throw new ProviderError(service, failure, status);
    }
    const text = await readBoundedText(response, MAX_RESPONSE_BYTES);
    if (text === null) throw new ProviderError(service, "bad_response", status);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError(service, "bad_response", status);
    }
  } catch (error) {
    if (error instanceof ProviderError) throw error;
    // fetch and body reads fail with TypeError/DOMException whose messages
    // may quote the URL; only the kind of failure is kept.
    throw new ProviderError(service, signal.aborted ? "timeout" : "unavailable", status);
  }
}

/**
 * The body as UTF-8 text, or null (body cancelled) when it declares or turns
 * out to hold more than `maxBytes`: reading stops at the cap, so an endless
 * or huge body costs at most `maxBytes` of memory and transfer.
 */
export async function readBoundedText(response: Response, maxBytes: number): Promise<string | null> {
  const declared = Number(response.headers.get("content-length") ?? "");
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    return null;
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let received = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.byteLength;
    if (received > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

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
