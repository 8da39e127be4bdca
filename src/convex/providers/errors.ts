/**
 * The one error type integrations, AI providers and the OAuth token client
 * throw. Its message is built only from the service name, the error kind and
 * the HTTP status: never from a credential, a request header or a response
 * body (providers echo parts of keys in their error bodies, e.g. "Invalid API
 * Key provided: sk_test_…1234"), so it is safe to store in
 * connections.lastError and to show to clients.
 *
 * Imports nothing: the client-facing error contract (../errors.ts) maps a
 * ProviderError to PROVIDER_ERROR, never the other way round.
 */

export type ProviderErrorKind =
  /** 401/403: the credentials were refused (a 403 that says it is a rate limit is rate_limited). */
  | "unauthorized"
  /** 404: the repository, site or endpoint does not exist for these credentials. */
  | "not_found"
  /** 429, or a 403 with Retry-After or an exhausted quota (`x-ratelimit-remaining: 0`): too many requests; try again later. */
  | "rate_limited"
  /** 5xx or a network failure: the service is down or unreachable. */
  | "unavailable"
  /** No complete answer within the request timeout. */
  | "timeout"
  /** The answer was not JSON or not the shape the service documents. */
  | "bad_response"
  /** 3xx: the service sent the request elsewhere; redirects are not followed, so credentials only go to the configured host. */
  | "redirected"
  /** Any other 4xx, or credentials that cannot make a valid request. */
  | "invalid_request"
  /** OAuth `invalid_grant`: the refresh token was revoked or expired; only a new authorization helps. */
  | "invalid_grant"
  /** The deployment lacks the configuration this call needs (e.g. an OAuth client id). */
  | "not_configured";

const DESCRIPTIONS: Record<ProviderErrorKind, string> = {
  unauthorized: "rejected the credentials",
  not_found: "did not find the requested resource",
  rate_limited: "is rate limiting requests; try again later",
  unavailable: "is unavailable",
  timeout: "did not answer in time",
  bad_response: "sent an unexpected response",
  redirected: "redirected the request elsewhere (not followed)",
  invalid_request: "refused the request",
  invalid_grant: "access was revoked or has expired; connect the account again",
  not_configured: "is not configured on this deployment",
};

/** A failed call to a third-party service, with a secret-free message. */
export class ProviderError extends Error {
  override readonly name = "ProviderError";
  /** Display name of the service, e.g. "Stripe". */
  readonly service: string;
  readonly kind: ProviderErrorKind;
  /** HTTP status when the service answered, else null. */
  readonly status: number | null;
  /**
   * For rate_limited: when the service said to try again (ms since the
   * epoch, from its Retry-After, or its quota's reset time when it said the
   * quota is used up), else null.
   */
  readonly retryAt: number | null;

  /**
   * `cause`, for server logs: the abort behind a "timeout", or the name
   * (and system code) of the network error behind an "unavailable" (not its
   * message: fetch's TypeErrors can quote a header). Never an error whose
   * message could quote a body or a header (a JSON.parse SyntaxError quotes
   * the text it read), so such failures have no cause.
   */
  constructor(service: string, kind: ProviderErrorKind, status: number | null = null, options?: { cause?: unknown; retryAt?: number | null }) {
    super(`${service} ${DESCRIPTIONS[kind]}${status === null ? "" : ` (HTTP ${status})`}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.service = service;
    this.kind = kind;
    this.status = status;
    this.retryAt = options?.retryAt ?? null;
  }
}

/** Whether `error` is a ProviderError. */
export function isProviderError(error: unknown): error is ProviderError {
  return error instanceof ProviderError;
}

/** The error kind an HTTP status means, or null for a success status. */
export function kindForStatus(status: number): ProviderErrorKind | null {
  if (status >= 200 && status < 300) return null;
  if (status >= 300 && status < 400) return "redirected";
  if (status === 401 || status === 403) return "unauthorized";
  if (status === 404) return "not_found";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "unavailable";
  return "invalid_request";
}
