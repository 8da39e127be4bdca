/** What an integration declares; see docs/integrations.md for adding one. */
import type { Credentials } from "../../validators";

/** One credential field the dashboard asks for. */
export interface CredentialField {
  /** Key in the credentials object, e.g. "secretKey". */
  name: string;
  /** Label for the dashboard form. */
  label: string;
  /** Secret fields are shown only as masked hints; others are shown in full. */
  secret: boolean;
  /** What a valid value looks like, checked when credentials are written; `description` completes "must be …". */
  format?: { pattern: RegExp; description: string };
}

/** One value read from a service, e.g. { name: "stars", value: 1234 }. */
export interface MetricPoint {
  name: string;
  value: number;
}

/** The time window a sync reads, in ms since the epoch. Gauges (balances, stars) ignore it. */
export interface MetricsRange {
  from: number;
  to: number;
}

/** Where an OAuth endpoint is: a default URL, overridable by an environment variable (tests, proxies). */
export interface EndpointSetting {
  envName: string;
  defaultUrl: string;
}

/**
 * How an integration authorizes over OAuth 2.0 (authorization code + PKCE
 * S256, refresh tokens). Its connections are created by
 * connections.startOAuth and the /oauth/callback route, never with
 * credentials typed in; their tokens are refreshed by the sync (oauth/refresh.ts).
 */
export interface OAuthProvider {
  /** Who the user signs in with, e.g. "Google" (for messages). */
  providerName: string;
  authorizationEndpoint: EndpointSetting;
  tokenEndpoint: EndpointSetting;
  revocationEndpoint: EndpointSetting;
  /** Environment variables holding the OAuth client's id and secret. */
  clientIdEnv: string;
  clientSecretEnv: string;
  scopes: readonly string[];
  /** The `iss` values of the provider's OpenID Connect ID tokens; without them an ID token names no account. */
  idTokenIssuers?: readonly string[];
  /** Extra authorization-request parameters, e.g. { access_type: "offline", prompt: "consent" } for Google. */
  extraAuthorizationParams?: Readonly<Record<string, string>>;
  /** The hint shown for the stored tokens, e.g. "Google account connected": never token material. */
  accountHint: string;
}

/** An integration Dashtray can sync metrics from. */
export interface Integration {
  /** Stable id stored in connections.service. */
  id: string;
  /** Display name. */
  name: string;
  /**
   * Every field a connection of this service needs; no other field is
   * accepted. For an OAuth integration: its settings (non-secret, e.g. a
   * property id), given to connections.startOAuth.
   */
  credentialFields: readonly CredentialField[];
  /** Set for integrations that connect over OAuth 2.0 instead of typed-in credentials. */
  oauth?: OAuthProvider;
  /**
   * Reads the current metrics from the service's real API with `fetch`
   * (through the transport, ../transport.ts). Throws only ProviderError. Must not log
   * or return any credential. An OAuth integration gets its settings plus
   * `accessToken`, a token valid for at least the refresh margin.
   */
  fetchMetrics(credentials: Credentials, range: MetricsRange): Promise<MetricPoint[]>;
}
