/**
 * OAuth 2.0 client calls (RFC 6749, PKCE RFC 7636, revocation RFC 7009):
 * the authorization URL, the code exchange, the refresh, the revocation.
 * No Convex functions here; oauth/ decides when to call them.
 *
 * Token endpoint answers carry tokens in success bodies and often echo the
 * presented token or code in error bodies (`error_description`). Only the
 * standard `error` code of an error body is read, and only if it is one of
 * the codes RFC 6749 §5.2 defines; everything else is discarded. Errors are
 * ProviderErrors, whose messages never hold a token, a code or the client
 * secret.
 */
import { env } from "../../env";
import { base64UrlDecode, utf8Decode } from "../../lib/encoding";
import { ProviderError } from "../errors";
import { baseUrl, parseJson, send } from "../transport";
import type { Integration, OAuthProvider } from "./types";

/** Largest token endpoint answer read, in bytes (real ones are a few kilobytes); reading stops there. */
export const MAX_TOKEN_RESPONSE_BYTES = 64_000;
/** Longest token accepted from a provider (Google's are a few hundred characters). */
const MAX_TOKEN_LENGTH = 4096;
/** Lifetime assumed when a token answer has no expires_in (RFC 6749 makes it optional). */
const DEFAULT_EXPIRES_IN_SECONDS = 3600;
/** Error codes of RFC 6749 §5.2 and RFC 7009 §2.2.1: the only part of an error body that is kept. */
const OAUTH_ERROR_CODES = new Set([
  "invalid_token",
  "unsupported_token_type",
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
]);

/** Tokens from a token endpoint answer. */
export interface TokenSet {
  accessToken: string;
  /** Absent when the provider kept the previous refresh token (no rotation). */
  refreshToken?: string;
  /** When the access token expires, ms since the epoch. */
  accessTokenExpiresAt: number;
  /**
   * The account that granted access: the `sub` claim of the OpenID Connect
   * ID token in the answer (scope "openid"), when there is one. Identifies
   * the user; stored only as a keyed hash (oauth/accounts.ts).
   */
  accountId?: string;
}

/** Longest `sub` OpenID Connect allows (Core 1.0 §2: at most 255 ASCII characters). */
const MAX_SUBJECT_LENGTH = 255;

/** Who an ID token must come from and be for, to name an account. */
interface IdTokenAudience {
  clientId: string;
  issuers: readonly string[];
}

/**
 * The `sub` claim of an ID token's payload, or undefined when there is no
 * usable one. The signature is not checked, on purpose: the token came in
 * the answer of the provider's token endpoint, over TLS, to a request
 * authenticated with the client secret. OpenID Connect Core 1.0 §3.1.3.7
 * lets TLS server validation stand in for the signature check in exactly
 * this case, and Google's OpenID Connect guide
 * (developers.google.com/identity/protocols/oauth2/openid-connect, on
 * obtaining user information from the ID token) says the same of tokens
 * received straight from Google over HTTPS. The claims that remain required
 * are checked: `iss` is one of the provider's issuers and `aud` names this
 * deployment's client; otherwise the token names no account (unknown,
 * which oauth/accounts.ts treats as possibly shared). Nothing else of the
 * token is read or kept.
 */
function idTokenSubject(value: unknown, expected: IdTokenAudience): string | undefined {
  if (typeof value !== "string" || value.length > MAX_TOKEN_LENGTH) return undefined;
  const payload = value.split(".")[1];
  const bytes = payload === undefined ? null : base64UrlDecode(payload);
  if (bytes === null) return undefined;
  try {
    const claims: unknown = JSON.parse(utf8Decode(bytes));
    if (typeof claims !== "object" || claims === null) return undefined;
    const { sub, iss, aud } = claims as { sub?: unknown; iss?: unknown; aud?: unknown };
    if (typeof iss !== "string" || !expected.issuers.includes(iss)) return undefined;
    const audiences: unknown[] = Array.isArray(aud) ? aud : [aud];
    if (!audiences.includes(expected.clientId)) return undefined;
    return typeof sub === "string" && sub.length > 0 && sub.length <= MAX_SUBJECT_LENGTH ? sub : undefined;
  } catch {
    // A payload that is not JSON names no account; its text is not kept (it could quote a token).
    return undefined;
  }
}

/** The OAuth client of an integration: id and secret from the deployment's environment. */
export interface OAuthClient {
  clientId: string;
  clientSecret: string;
}

/** The OAuth client configured for `integration`, or a not_configured ProviderError naming the missing variable. */
export function oauthClient(integration: Integration, provider: OAuthProvider): OAuthClient {
  const clientId = env[provider.clientIdEnv]?.trim();
  const clientSecret = env[provider.clientSecretEnv]?.trim();
  if (!clientId) throw new ProviderError(`${integration.name} (${provider.clientIdEnv})`, "not_configured");
  if (!clientSecret) throw new ProviderError(`${integration.name} (${provider.clientSecretEnv})`, "not_configured");
  return { clientId, clientSecret };
}

/** The URL of an endpoint: its environment override, else its default. */
export function endpointUrl(endpoint: OAuthProvider["authorizationEndpoint"]): string {
  return baseUrl(endpoint.envName, endpoint.defaultUrl);
}

/** The provider's authorization URL for one flow (code flow, S256 PKCE challenge, state). */
export function authorizationUrl(
  provider: OAuthProvider,
  request: { clientId: string; redirectUri: string; state: string; codeChallenge: string },
): string {
  const url = new URL(endpointUrl(provider.authorizationEndpoint));
  const params: Record<string, string> = {
    response_type: "code",
    client_id: request.clientId,
    redirect_uri: request.redirectUri,
    scope: provider.scopes.join(" "),
    state: request.state,
    code_challenge: request.codeChallenge,
    code_challenge_method: "S256",
    ...provider.extraAuthorizationParams,
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

/**
 * POSTs a form to an OAuth endpoint through the transport (timeout, bounded
 * read, no redirect: the form carries the client secret and a grant); the
 * 2xx answer, else a ProviderError (kind "invalid_grant" for that OAuth
 * error code, and for "invalid_token" when `tokenGoneIsGrantGone`: a
 * revocation of a token that is already invalid).
 */
async function postForm(service: string, url: string, form: Record<string, string>, tokenGoneIsGrantGone = false) {
  return send(
    service,
    url,
    {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: new URLSearchParams(form).toString(),
    },
    {
      maxBytes: MAX_TOKEN_RESPONSE_BYTES,
      errorKindFromBody: (status, text) => {
        // 400 and 401 carry an OAuth error code; nothing else of the body is looked at.
        const code = (status === 400 || status === 401) && text !== null ? oauthErrorCode(text) : null;
        return code === "invalid_grant" || (tokenGoneIsGrantGone && code === "invalid_token") ? "invalid_grant" : null;
      },
    },
  );
}

/** The RFC 6749 `error` code of an error body, or null; nothing else of the body is kept. */
function oauthErrorCode(text: string): string | null {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== "object" || body === null) return null;
    const code = (body as { error?: unknown }).error;
    return typeof code === "string" && OAUTH_ERROR_CODES.has(code) ? code : null;
  } catch {
    return null;
  }
}

function tokenString(service: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_TOKEN_LENGTH) {
    throw new ProviderError(service, "bad_response");
  }
  return value;
}

/** The tokens of a token endpoint answer, checked for shape (RFC 6749 §5.1). */
function parseTokenAnswer(service: string, text: string, now: number, audience: IdTokenAudience): TokenSet {
  const answer = parseJson(service, text);
  if (typeof answer !== "object" || answer === null) throw new ProviderError(service, "bad_response");
  const body = answer as Record<string, unknown>;
  const tokenType = body.token_type;
  if (typeof tokenType !== "string" || tokenType.toLowerCase() !== "bearer") throw new ProviderError(service, "bad_response");
  const expiresIn = body.expires_in === undefined ? DEFAULT_EXPIRES_IN_SECONDS : Number(body.expires_in);
  if (!Number.isFinite(expiresIn) || expiresIn <= 0) throw new ProviderError(service, "bad_response");
  return {
    accessToken: tokenString(service, body.access_token),
    ...(body.refresh_token === undefined ? {} : { refreshToken: tokenString(service, body.refresh_token) }),
    accessTokenExpiresAt: now + Math.floor(expiresIn * 1000),
    ...accountOf(body.id_token, audience),
  };
}

function accountOf(idToken: unknown, audience: IdTokenAudience): { accountId?: string } {
  const accountId = idTokenSubject(idToken, audience);
  return accountId === undefined ? {} : { accountId };
}

/** Exchanges an authorization code (with its PKCE verifier) for tokens. */
export async function exchangeCode(
  integration: Integration,
  provider: OAuthProvider,
  request: { code: string; codeVerifier: string; redirectUri: string },
): Promise<TokenSet> {
  const { clientId, clientSecret } = oauthClient(integration, provider);
  const startedAt = Date.now();
  const answer = await postForm(integration.name, endpointUrl(provider.tokenEndpoint), {
    grant_type: "authorization_code",
    code: request.code,
    code_verifier: request.codeVerifier,
    redirect_uri: request.redirectUri,
    client_id: clientId,
    client_secret: clientSecret,
  });
  return parseTokenAnswer(integration.name, answer.text, startedAt, { clientId, issuers: provider.idTokenIssuers ?? [] });
}

/**
 * Spends a refresh token for a new access token (and, with providers that
 * rotate them, a new refresh token). `invalid_grant` is a ProviderError of
 * kind "invalid_grant".
 */
export async function refreshTokens(integration: Integration, provider: OAuthProvider, refreshToken: string): Promise<TokenSet> {
  const { clientId, clientSecret } = oauthClient(integration, provider);
  const startedAt = Date.now();
  const answer = await postForm(integration.name, endpointUrl(provider.tokenEndpoint), {
    grant_type: "refresh_token",
    refresh_token: refreshToken,
    client_id: clientId,
    client_secret: clientSecret,
  });
  return parseTokenAnswer(integration.name, answer.text, startedAt, { clientId, issuers: provider.idTokenIssuers ?? [] });
}

/**
 * Revokes a token at the provider (RFC 7009); revoking a refresh token ends
 * the whole grant. At Google, it ends every token the same Google account
 * gave this client (oauth/accounts.ts decides when that is safe).
 */
export async function revokeToken(integration: Integration, provider: OAuthProvider, token: string): Promise<void> {
  const { clientId, clientSecret } = oauthClient(integration, provider);
  try {
    // The answer's body (empty at Google) means nothing: the status says it all.
    await postForm(
      integration.name,
      endpointUrl(provider.revocationEndpoint),
      { token, client_id: clientId, client_secret: clientSecret },
      true,
    );
  } catch (error) {
    // A grant that is already gone is what revocation wants (RFC 7009 answers 200 for an invalid token; Google answers 400 invalid_token).
    if (error instanceof ProviderError && error.kind === "invalid_grant") return;
    throw error;
  }
}
