/**
 * The one HTTP transport for every call to a third-party service: the
 * integrations, the AI providers and the OAuth token client. Base URLs are
 * overridable by environment variables (tests point them at a local
 * server); every request has a timeout, reads at most a bounded body, and
 * never follows a redirect (it could carry credential headers or a form
 * holding the client secret to another host). Every failure is a
 * ProviderError. Nothing here logs, and no header or body ever reaches an
 * error message. The checks at the end read an answer's shape (and a stored
 * credential's field), failing with a ProviderError that says nothing of
 * the value.
 */
import { env } from "../env";
import { envNumber } from "../lib/envNumber";
import type { Credentials } from "../validators";
import { ProviderError, kindForStatus, type ProviderErrorKind } from "./errors";

/** Default time a provider has to answer, headers and body included. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

/** Largest response body accepted by default, in bytes (real answers are a few kilobytes); reading stops there. */
export const MAX_RESPONSE_BYTES = 1_000_000;

/** The base URL from `envName` if set, else `fallback`; without a trailing slash. */
export function baseUrl(envName: string, fallback: string): string {
  const configured = env[envName]?.trim();
  return (configured || fallback).replace(/\/+$/, "");
}

/** Request timeout in ms: PROVIDER_TIMEOUT_MS if it is a positive number, else the default. */
export function providerTimeoutMs(): number {
  return envNumber(env.PROVIDER_TIMEOUT_MS, DEFAULT_PROVIDER_TIMEOUT_MS, { above: 0 });
}

function timeoutSignal(ms: number): AbortSignal {
  if (typeof AbortSignal.timeout === "function") return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException("request timed out", "TimeoutError")), ms);
  return controller.signal;
}

/** One request: method, headers and body as `fetch` takes them (redirect and signal are the transport's). */
export interface ProviderRequest {
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
}

/** How `send` reads the answer. */
export interface ReadOptions {
  /** Largest body read, in bytes (default MAX_RESPONSE_BYTES). */
  maxBytes?: number;
  /**
   * For an error status: reads the body (at most `maxErrorBytes`; null when
   * it is longer) and returns the kind it means instead of the status's, or
   * null to keep the status's. Without it, error bodies are discarded
   * unread (they can echo the credential). It must keep nothing of the body
   * but its answer.
   */
  errorKindFromBody?: (status: number, text: string | null) => ProviderErrorKind | null;
  /** Largest error body `errorKindFromBody` gets, in bytes (default `maxBytes`). */
  maxErrorBytes?: number;
}

/** Longest Retry-After or reset time honoured by rateLimitOf, from now: a day (the sync's own backoff caps it lower). */
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * Whether an error answer says it is a rate limit, and when to try again.
 * 429 always is. A 403 is when it carries Retry-After or says the quota is
 * used up (`x-ratelimit-remaining: 0`): GitHub answers its primary and
 * secondary rate limits so, and a refused credential never has either.
 * `retryAt`: Retry-After (seconds, or an HTTP date), else, with the quota
 * used up, `x-ratelimit-reset` (epoch seconds); at most a day ahead; null
 * when neither is readable.
 */
export function rateLimitOf(status: number, headers: Headers, now: number = Date.now()): { retryAt: number | null } | null {
  const retryAfter = headers.get("retry-after")?.trim() ?? "";
  const quotaUsedUp = headers.get("x-ratelimit-remaining")?.trim() === "0";
  if (status !== 429 && !(status === 403 && (retryAfter !== "" || quotaUsedUp))) return null;
  let retryAt: number | null = null;
  if (/^\d{1,9}$/.test(retryAfter)) retryAt = now + Number(retryAfter) * 1000;
  else if (retryAfter !== "" && retryAfter.length <= 64 && Number.isFinite(Date.parse(retryAfter))) retryAt = Date.parse(retryAfter);
  else if (quotaUsedUp && /^\d{1,12}$/.test(headers.get("x-ratelimit-reset")?.trim() ?? "")) {
    retryAt = Number(headers.get("x-ratelimit-reset")!.trim()) * 1000;
  }
  return { retryAt: retryAt === null ? null : Math.min(Math.max(retryAt, now), now + MAX_RETRY_AFTER_MS) };
}

/** A 2xx answer: its status and its body text. */
export interface ProviderAnswer {
  status: number;
  text: string;
}

/**
 * Sends one request and returns its 2xx answer (status and body text). Throws a
 * ProviderError: timeout, unavailable (network failure or 5xx),
 * unauthorized, rate_limited (429, or a 403 that says so: rateLimitOf; with
 * its retryAt), not_found, redirected (3xx, never followed),
 * invalid_request (other statuses) or what `errorKindFromBody` says,
 * bad_response (a body over the cap: refused from its Content-Length, or as
 * soon as that many bytes arrived).
 */
export async function send(service: string, url: string, request: ProviderRequest, options: ReadOptions = {}): Promise<ProviderAnswer> {
  const maxBytes = options.maxBytes ?? MAX_RESPONSE_BYTES;
  const signal = timeoutSignal(providerTimeoutMs());
  let status: number | null = null;
  try {
    // fetch would refuse these with a TypeError quoting the value (a credential holding a line break).
    if (Object.values(request.headers ?? {}).some((value) => /[\r\n\0]/.test(value))) {
      throw new ProviderError(service, "invalid_request");
    }
    const response = await fetch(url, { ...request, redirect: "manual", signal });
    status = response.status;
    const failure = kindForStatus(status);
    if (failure) {
      const rateLimit = rateLimitOf(status, response.headers);
      if (rateLimit) {
        await response.body?.cancel().catch(() => undefined);
        throw new ProviderError(service, "rate_limited", status, rateLimit);
      }
      if (!options.errorKindFromBody) {
        await response.body?.cancel().catch(() => undefined);
        throw new ProviderError(service, failure, status);
      }
      const kind = options.errorKindFromBody(status, await readBoundedText(response, options.maxErrorBytes ?? maxBytes));
      throw new ProviderError(service, kind ?? failure, status);
    }
    const text = await readBoundedText(response, maxBytes);
    if (text === null) throw new ProviderError(service, "bad_response", status);
    return { status, text };
  } catch (error) {
    if (error instanceof ProviderError) throw error;
    // The abort is kept as the cause for server logs. Any other error is not:
    // its message can quote a header (Headers' TypeError quotes an invalid
    // value or name) or the URL, so the cause keeps only its name and the
    // network error's code (e.g. ECONNREFUSED).
    if (signal.aborted) throw new ProviderError(service, "timeout", status, { cause: error });
    throw new ProviderError(service, "unavailable", status, { cause: causeWithoutMessage(error) });
  }
}

/** An Error naming `error`'s class and, for a network failure, its system code: nothing of its message. */
function causeWithoutMessage(error: unknown): Error {
  // Read without instanceof: fetch's errors may come from another realm.
  const { name, cause } = (typeof error === "object" && error !== null ? error : {}) as { name?: unknown; cause?: unknown };
  const { code } = (typeof cause === "object" && cause !== null ? cause : {}) as { code?: unknown };
  const safeName = typeof name === "string" && /^\w{1,40}$/.test(name) ? name : "Error";
  return new Error(typeof code === "string" && /^[A-Z0-9_]{1,40}$/.test(code) ? `${safeName} (${code})` : safeName);
}

/** `text` parsed as JSON, or a bad_response ProviderError (without the SyntaxError, whose message quotes the text). */
export function parseJson(service: string, text: string, status: number | null = null): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProviderError(service, "bad_response", status);
  }
}

/** Sends one request (see `send`, and its `options`) and returns its parsed JSON body; bad_response when it is not JSON. */
export async function requestJson(service: string, url: string, request: ProviderRequest, options?: ReadOptions): Promise<unknown> {
  const answer = await send(service, url, request, options);
  return parseJson(service, answer.text, answer.status);
}

/**
 * The body as UTF-8 text, or null (body cancelled) when it declares or turns
 * out to hold more than `maxBytes`: reading stops at the cap, so an endless
 * or huge body costs at most `maxBytes` of memory and transfer.
 */
async function readBoundedText(response: Response, maxBytes: number): Promise<string | null> {
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
