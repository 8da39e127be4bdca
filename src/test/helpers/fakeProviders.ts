/**
 * A local HTTP server (127.0.0.1, random port) that answers like Stripe,
 * GitHub, Plausible, OpenAI, Anthropic, Google's OAuth 2.0 server and the
 * GA4 Data API, so actions run their real fetch code. It checks the auth
 * headers it receives against the secrets it was started with and answers
 * 401 (echoing the received key, as real providers partly do) when they
 * differ. A route can be switched to a failure mode. The OAuth server
 * (`oauth`) issues codes, access and refresh tokens itself, rotates refresh
 * tokens, and echoes presented tokens and codes in its error bodies.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";

export interface FakeSecrets {
  stripeKey: string;
  githubToken: string;
  githubRepository: string;
  plausibleKey: string;
  plausibleSiteId: string;
  openaiKey: string;
  anthropicKey: string;
  googleClientId: string;
  googleClientSecret: string;
  gaPropertyId: string;
}

export type Route =
  | "stripe.balance"
  | "github.repo"
  | "plausible.query"
  | "openai.chat"
  | "openai.models"
  | "anthropic.messages"
  | "anthropic.models"
  | "stripe.subscriptions"
  | "google.token"
  | "google.revoke"
  | "ga4.runReport";

/**
 * "ok" answers normally; a number forces that status; "slow" never answers in time; "huge" streams a
 * HUGE_BODY_BYTES JSON body without Content-Length, "huge_declared" the same with its Content-Length.
 * GitHub-style rate limits, all HTTP 403: "rate_limit_retry_after" (Retry-After: RATE_LIMIT_RETRY_AFTER_S),
 * "rate_limit_quota" (x-ratelimit-remaining 0, reset RATE_LIMIT_RESET_S from now), "rate_limit_body" (neither
 * header; the body says "secondary rate limit"); "forbidden_padded": a refused token's 403 whose body, over
 * 4 KiB, says "secondary rate limit" only at its end.
 */
export type Mode =
  | "ok"
  | "rate_limit_retry_after"
  | "rate_limit_quota"
  | "rate_limit_body"
  | "forbidden_padded"
  | 401
  | 403
  | 404
  | 429
  | 500
  | 503
  | "slow"
  | "invalid_json"
  | "wrong_shape"
  | "redirect"
  | "huge"
  | "huge_declared";

/** The Retry-After of mode "rate_limit_retry_after", in seconds. */
export const RATE_LIMIT_RETRY_AFTER_S = 90;
/** How far ahead mode "rate_limit_quota" puts x-ratelimit-reset, in seconds. */
export const RATE_LIMIT_RESET_S = 50 * 60;

/** Size of the body the "huge" modes serve: 30 MB. */
export const HUGE_BODY_BYTES = 30_000_000;

export interface RecordedRequest {
  route: Route | null;
  method: string;
  path: string;
  /** The query string, without "?". */
  query: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The values the fake services report; tests change them between syncs. */
export interface FakeValues {
  stripe: {
    available: { amount: number; currency: string }[];
    pending: { amount: number; currency: string }[];
    /** Active subscriptions, as GET /v1/subscriptions lists them (ids, items with prices and quantities). */
    subscriptions: FakeSubscription[];
  };
  ga4: { activeUsers: number; sessions: number; screenPageViews: number };
  github: { stars: number; forks: number; openIssues: number; watchers: number };
  plausible: { visitors: number; pageviews: number };
  insightText: string;
}

/** A Stripe subscription as the fake lists it. */
export interface FakeSubscription {
  id: string;
  items: {
    quantity?: number;
    price: {
      unit_amount: number | null;
      currency: string;
      recurring: { interval: "day" | "week" | "month" | "year"; interval_count: number; usage_type?: "licensed" | "metered" };
    };
  }[];
  /** Set to make the item list look truncated (Stripe lists up to 10 items per subscription). */
  itemsHasMore?: boolean;
}

/** The fake Google OAuth 2.0 server's state and knobs. */
export interface FakeOAuth {
  /** Lifetime of the access tokens it issues, in seconds; below the 5-minute margin they refresh on the next sync. */
  accessTokenLifetimeSeconds: number;
  /** Whether a refresh answers with a new refresh token (the old one is then dead). */
  rotateRefreshTokens: boolean;
  /** Milliseconds the token endpoint waits before answering a refresh (to make syncs overlap). */
  refreshDelayMs: number;
  /** Every code, access token and refresh token it issued, to check none leaks. */
  issued: string[];
  /** Refresh tokens that still work. */
  liveRefreshTokens: Set<string>;
  /** Tokens presented to the revocation endpoint. */
  revoked: string[];
  /**
   * The Google account that consents at the next authorize(): the `sub` of the ID token the code exchange
   * answers with when the flow asked for "openid". Like Google, the fake keeps one authorization per account
   * (and client): revoking any token of an account ends every token that account was issued.
   */
  account: string;
  /** Claims that replace the ID token's (iss, aud, sub) in the next answers: a token for another client, say. */
  idTokenClaims?: Record<string, unknown>;
  /** Awaited before the token endpoint answers a grant ("authorization_code", "refresh_token"): to act meanwhile. */
  beforeTokenAnswer?: (grantType: string) => Promise<void>;
  /** Refresh and access tokens that still work, of `account`. */
  liveTokensOf(account: string): string[];
  /**
   * Plays the user's browser at the authorization URL: checks its parameters
   * (client id, redirect URI, S256 challenge, scope, state), consents, and
   * returns the callback path and query the provider would redirect to.
   */
  authorize(authorizationUrl: string): { callbackPath: string; code: string; state: string; params: URLSearchParams };
  /** Ends every grant, as a user removing the app's access in their Google account would. */
  revokeEverything(): void;
}

export interface FakeProviders {
  /** Base URL for every *_API_BASE_URL variable. */
  url: string;
  requests: RecordedRequest[];
  values: FakeValues;
  oauth: FakeOAuth;
  setMode(route: Route, mode: Mode): void;
  /** Bytes of "huge" bodies the server managed to hand to the socket (it waits while the client does not read). */
  hugeBytesSent(): number;
  close(): Promise<void>;
}

const SLOW_RESPONSE_MS = 5_000;

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "Content-Type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

function bearer(headers: IncomingHttpHeaders): string {
  return (headers.authorization ?? "").replace(/^Bearer /, "");
}

/** Paths of the fake Google endpoints (tests point the GOOGLE_* URLs at them). */
export const GOOGLE_PATHS = { authorize: "/o/oauth2/v2/auth", token: "/oauth2/token", revoke: "/oauth2/revoke" };

function route(method: string, path: string, headers: IncomingHttpHeaders): Route | null {
  if (method === "GET" && path === "/v1/balance") return "stripe.balance";
  if (method === "GET" && path === "/v1/subscriptions") return "stripe.subscriptions";
  if (method === "POST" && path === GOOGLE_PATHS.token) return "google.token";
  if (method === "POST" && path === GOOGLE_PATHS.revoke) return "google.revoke";
  if (method === "POST" && /^\/v1beta\/properties\/[^/]+:runReport$/.test(path)) return "ga4.runReport";
  if (method === "GET" && /^\/repos\/[^/]+\/[^/]+$/.test(path)) return "github.repo";
  if (method === "POST" && path === "/api/v2/query") return "plausible.query";
  if (method === "POST" && path === "/v1/chat/completions") return "openai.chat";
  if (method === "POST" && path === "/v1/messages") return "anthropic.messages";
  if (method === "GET" && path === "/v1/models") return headers["x-api-key"] ? "anthropic.models" : "openai.models";
  return null;
}

/** A 401 body in the provider's own format, quoting the key it received. */
function unauthorized(response: ServerResponse, which: Route, received: string): void {
  if (which.startsWith("ga4")) {
    json(response, 401, {
      error: { code: 401, message: `Request had invalid authentication credentials: ${received}`, status: "UNAUTHENTICATED" },
    });
  } else if (which.startsWith("stripe")) {
    json(response, 401, {
      error: { message: `Invalid API Key provided: ${received}`, type: "invalid_request_error" },
    });
  } else if (which.startsWith("github")) {
    json(response, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
  } else if (which.startsWith("plausible")) {
    json(response, 401, { error: `Invalid API key: ${received}` });
  } else if (which.startsWith("openai")) {
    json(response, 401, {
      error: { message: `Incorrect API key provided: ${received}.`, type: "invalid_request_error", code: "invalid_api_key" },
    });
  } else {
    json(response, 401, { type: "error", error: { type: "authentication_error", message: `invalid x-api-key ${received}` } });
  }
}

/** Starts the fake on 127.0.0.1 with an OS-assigned port. */
export async function startFakeProviders(secrets: FakeSecrets): Promise<FakeProviders> {
  const modes = new Map<Route, Mode>();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const values: FakeValues = {
    stripe: {
      available: [
        { amount: 1_234_567, currency: "usd" },
        { amount: 50_000, currency: "eur" },
      ],
      pending: [{ amount: 78_900, currency: "usd" }],
      subscriptions: [
        // 2 × 10.00 usd a month
        { id: "sub_1", items: [{ quantity: 2, price: { unit_amount: 1000, currency: "usd", recurring: { interval: "month", interval_count: 1 } } }] },
        // 120.00 usd a year → 10.00 a month; plus a metered item that adds nothing
        {
          id: "sub_2",
          items: [
            { quantity: 1, price: { unit_amount: 12_000, currency: "usd", recurring: { interval: "year", interval_count: 1 } } },
            { price: { unit_amount: 5, currency: "usd", recurring: { interval: "month", interval_count: 1, usage_type: "metered" } } },
          ],
        },
        // 30.00 eur every 3 months → 10.00 a month
        { id: "sub_3", items: [{ quantity: 1, price: { unit_amount: 3000, currency: "eur", recurring: { interval: "month", interval_count: 3 } } }] },
      ],
    },
    ga4: { activeUsers: 321, sessions: 456, screenPageViews: 1789 },
    github: { stars: 4242, forks: 321, openIssues: 17, watchers: 99 },
    plausible: { visitors: 1200, pageviews: 3400 },
    insightText: "Revenue grew 12% this week; open issues are rising.",
  };

  let serial = 0;
  const liveAccessTokens = new Map<string, number>();
  /** code → what it was issued for; deleted when used (codes are single use). */
  const codes = new Map<string, { challenge: string; redirectUri: string; account: string; openid: boolean }>();
  /** Every access and refresh token issued → the account it belongs to. */
  const accountOfToken = new Map<string, string>();
  const oauth: FakeOAuth = {
    accessTokenLifetimeSeconds: 3600,
    rotateRefreshTokens: true,
    refreshDelayMs: 0,
    issued: [],
    liveRefreshTokens: new Set(),
    revoked: [],
    account: "100000000000000000001",
    liveTokensOf(account) {
      return [...accountOfToken]
        .filter(([token, owner]) => owner === account && (oauth.liveRefreshTokens.has(token) || liveAccessTokens.has(token)))
        .map(([token]) => token);
    },
    authorize(authorizationUrl) {
      const url = new URL(authorizationUrl);
      const params = url.searchParams;
      if (url.pathname !== GOOGLE_PATHS.authorize) throw new Error(`fake OAuth: wrong authorization path ${url.pathname}`);
      if (params.get("client_id") !== secrets.googleClientId) throw new Error("fake OAuth: unknown client_id");
      if (params.get("response_type") !== "code") throw new Error("fake OAuth: response_type must be code");
      if (params.get("code_challenge_method") !== "S256") throw new Error("fake OAuth: PKCE S256 required");
      const challenge = params.get("code_challenge") ?? "";
      if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) throw new Error("fake OAuth: malformed code_challenge");
      const state = params.get("state") ?? "";
      const redirectUri = params.get("redirect_uri") ?? "";
      if (!state || !redirectUri) throw new Error("fake OAuth: state and redirect_uri are required");
      const code = `4/0FAKE-CODE-${++serial}-${randomBytes(12).toString("hex")}`;
      oauth.issued.push(code);
      // The account id identifies a person: checked never to leak, like the tokens.
      if (oauth.account !== "" && !oauth.issued.includes(oauth.account)) oauth.issued.push(oauth.account);
      const openid = (params.get("scope") ?? "").split(" ").includes("openid");
      codes.set(code, { challenge, redirectUri, account: oauth.account, openid });
      const callback = new URL(redirectUri);
      return { callbackPath: `${callback.pathname}?${new URLSearchParams({ code, state, scope: params.get("scope") ?? "" })}`, code, state, params };
    },
    revokeEverything() {
      oauth.liveRefreshTokens.clear();
      liveAccessTokens.clear();
    },
  };

  /** New tokens: an access token always, a refresh token on a code exchange or when rotating. */
  const issueTokens = (withRefreshToken: boolean, account: string, openid = false) => {
    const accessToken = `ya29.FAKE-ACCESS-${++serial}-${randomBytes(12).toString("hex")}`;
    accountOfToken.set(accessToken, account);
    liveAccessTokens.set(accessToken, Date.now() + oauth.accessTokenLifetimeSeconds * 1000);
    oauth.issued.push(accessToken);
    const answer: Record<string, unknown> = {
      access_token: accessToken,
      expires_in: oauth.accessTokenLifetimeSeconds,
      scope: "https://www.googleapis.com/auth/analytics.readonly",
      token_type: "Bearer",
    };
    if (withRefreshToken) {
      const refreshToken = `1//FAKE-REFRESH-${++serial}-${randomBytes(12).toString("hex")}`;
      oauth.liveRefreshTokens.add(refreshToken);
      oauth.issued.push(refreshToken);
      accountOfToken.set(refreshToken, account);
      answer.refresh_token = refreshToken;
    }
    if (openid) {
      // An unsigned stand-in for Google's RS256 ID token: the client reads only the payload's `sub`.
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
      const idToken = `${part({ alg: "RS256", typ: "JWT" })}.${part({ iss: "https://accounts.google.com", aud: secrets.googleClientId, sub: account, ...oauth.idTokenClaims })}.${randomBytes(16).toString("base64url")}`;
      oauth.issued.push(idToken);
      answer.id_token = idToken;
    }
    return answer;
  };

  /** POST /oauth2/token: authorization_code (with PKCE) and refresh_token grants; errors echo what was presented. */
  const handleToken = (response: ServerResponse, form: URLSearchParams): void => {
    if (form.get("client_id") !== secrets.googleClientId || form.get("client_secret") !== secrets.googleClientSecret) {
      return json(response, 401, { error: "invalid_client", error_description: `The OAuth client was not found: ${form.get("client_secret")}` });
    }
    const grantType = form.get("grant_type");
    if (grantType === "authorization_code") {
      const code = form.get("code") ?? "";
      const issued = codes.get(code);
      codes.delete(code);
      const verifier = form.get("code_verifier") ?? "";
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      if (!issued || issued.challenge !== challenge || issued.redirectUri !== form.get("redirect_uri")) {
        return json(response, 400, { error: "invalid_grant", error_description: `Bad code or code_verifier: ${code} ${verifier}` });
      }
      const exchanged = issued;
      void (oauth.beforeTokenAnswer?.(grantType) ?? Promise.resolve()).then(() =>
        json(response, 200, issueTokens(true, exchanged.account, exchanged.openid)),
      );
      return;
    }
    if (grantType === "refresh_token") {
      const refreshToken = form.get("refresh_token") ?? "";
      const answer = () => {
        if (!oauth.liveRefreshTokens.has(refreshToken)) {
          return json(response, 400, { error: "invalid_grant", error_description: `Token has been expired or revoked: ${refreshToken}` });
        }
        if (oauth.rotateRefreshTokens) oauth.liveRefreshTokens.delete(refreshToken);
        json(response, 200, issueTokens(oauth.rotateRefreshTokens, accountOfToken.get(refreshToken) ?? oauth.account));
      };
      const hooked = () => void (oauth.beforeTokenAnswer?.(grantType) ?? Promise.resolve()).then(answer);
      if (oauth.refreshDelayMs > 0) setTimeout(hooked, oauth.refreshDelayMs);
      else hooked();
      return;
    }
    json(response, 400, { error: "unsupported_grant_type" });
  };

  let hugeBytes = 0;
  /** A valid JSON array of HUGE_BODY_BYTES, written only as fast as the client reads it. */
  const streamHugeBody = (response: ServerResponse, declareLength: boolean): void => {
    response.writeHead(200, {
      "Content-Type": "application/json",
      ...(declareLength ? { "Content-Length": String(HUGE_BODY_BYTES) } : {}),
    });
    const chunk = "0,".repeat(32_768);
    let written = 0;
    let closed = false;
    response.on("close", () => (closed = true));
    const pump = (): void => {
      while (!closed) {
        if (written === 0) {
          response.write("[");
          written = 1;
        }
        if (written + chunk.length + 1 >= HUGE_BODY_BYTES) {
          const tail = "0".padStart(HUGE_BODY_BYTES - written - 1, " ") + "]";
          hugeBytes += tail.length;
          response.end(tail);
          return;
        }
        written += chunk.length;
        hugeBytes += chunk.length;
        if (!response.write(chunk)) {
          response.once("drain", pump);
          return;
        }
      }
    };
    pump();
  };

  const handle = (request: IncomingMessage, response: ServerResponse, body: string): void => {
    const [path = "/", query = ""] = (request.url ?? "/").split("?");
    const which = route(request.method ?? "GET", path, request.headers);
    requests.push({ route: which, method: request.method ?? "", path, query, headers: request.headers, body });
    if (!which) return json(response, 404, { error: "no such route in the fake" });

    const mode = modes.get(which) ?? "ok";
    if (mode === "slow") {
      const timer = setTimeout(() => json(response, 200, {}), SLOW_RESPONSE_MS);
      response.on("close", () => clearTimeout(timer));
      return;
    }
    if (mode === "invalid_json") {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end("<html><body>502 Bad Gateway</body></html>");
      return;
    }
    if (mode === "wrong_shape") return json(response, 200, { unexpected: true });
    if (mode === "huge" || mode === "huge_declared") return streamHugeBody(response, mode === "huge_declared");
    if (mode === "redirect") {
      // Elsewhere on this server: a client that followed it would show up in `requests` again.
      response.writeHead(307, { Location: "/redirected-here" });
      response.end();
      return;
    }
    const limited = { message: "Secondary rate limit hit for this token (fake); slow down." };
    const quota = { "x-ratelimit-limit": "5000", "x-ratelimit-used": "5000" };
    if (mode === "rate_limit_retry_after") {
      return json(response, 403, limited, { "Retry-After": String(RATE_LIMIT_RETRY_AFTER_S), "x-ratelimit-remaining": "4321" });
    }
    if (mode === "rate_limit_quota") {
      const reset = String(Math.floor(Date.now() / 1000) + RATE_LIMIT_RESET_S);
      return json(response, 403, { message: "Rate limit used up (fake)." }, { ...quota, "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset });
    }
    if (mode === "rate_limit_body") return json(response, 403, limited, { "x-ratelimit-remaining": "4321" });
    if (mode === "forbidden_padded") {
      return json(response, 403, { message: "Resource not accessible with this token (fake).", padding: "x".repeat(5000), note: "not a secondary rate limit" });
    }
    if (typeof mode === "number") {
      if (mode === 401) return unauthorized(response, which, bearer(request.headers) || String(request.headers["x-api-key"]));
      return json(response, mode, { error: { message: `forced ${mode}` } }, mode === 429 ? { "Retry-After": "30" } : {});
    }

    const headers = request.headers;
    switch (which) {
      case "stripe.subscriptions": {
        if (bearer(headers) !== secrets.stripeKey) return unauthorized(response, which, bearer(headers));
        const params = new URLSearchParams(query);
        if (params.get("status") !== "active") return json(response, 400, { error: { message: "status must be active here" } });
        const limit = Number(params.get("limit") ?? "10");
        const after = params.get("starting_after");
        const all = values.stripe.subscriptions;
        const start = after === null ? 0 : all.findIndex((subscription) => subscription.id === after) + 1;
        if (after !== null && start === 0) return json(response, 400, { error: { message: `No such subscription: '${after}'` } });
        const page = all.slice(start, start + limit);
        return json(response, 200, {
          object: "list",
          url: "/v1/subscriptions",
          has_more: start + limit < all.length,
          data: page.map((subscription) => ({
            id: subscription.id,
            object: "subscription",
            status: "active",
            currency: subscription.items[0]?.price.currency ?? "usd",
            items: {
              object: "list",
              has_more: subscription.itemsHasMore ?? false,
              data: subscription.items.map((item, index) => ({
                id: `si_${subscription.id}_${index}`,
                object: "subscription_item",
                ...(item.quantity === undefined ? {} : { quantity: item.quantity }),
                price: {
                  id: `price_${subscription.id}_${index}`,
                  object: "price",
                  billing_scheme: item.price.unit_amount === null ? "tiered" : "per_unit",
                  currency: item.price.currency,
                  unit_amount: item.price.unit_amount,
                  unit_amount_decimal: item.price.unit_amount === null ? null : String(item.price.unit_amount),
                  recurring: { usage_type: "licensed", ...item.price.recurring },
                  type: "recurring",
                },
              })),
            },
          })),
        });
      }
      case "google.token":
        return handleToken(response, new URLSearchParams(body));
      case "google.revoke": {
        const form = new URLSearchParams(body);
        const token = form.get("token") ?? "";
        oauth.revoked.push(token);
        if (!oauth.liveRefreshTokens.has(token) && !liveAccessTokens.has(token)) {
          return json(response, 400, { error: "invalid_token", error_description: `Token expired or revoked: ${token}` });
        }
        // Google ends the whole authorization: every token the token's account gave this client.
        const account = accountOfToken.get(token);
        for (const [issuedToken, owner] of accountOfToken) {
          if (owner !== account) continue;
          oauth.liveRefreshTokens.delete(issuedToken);
          liveAccessTokens.delete(issuedToken);
        }
        response.writeHead(200, { "Content-Type": "application/json" });
        response.end();
        return;
      }
      case "ga4.runReport": {
        const token = bearer(headers);
        const expiresAt = liveAccessTokens.get(token);
        if (expiresAt === undefined || expiresAt <= Date.now()) return unauthorized(response, which, token);
        if (path !== `/v1beta/properties/${secrets.gaPropertyId}:runReport`) {
          return json(response, 403, { error: { code: 403, message: "User does not have sufficient permissions for this property.", status: "PERMISSION_DENIED" } });
        }
        const report = JSON.parse(body) as { metrics?: { name: string }[]; dateRanges?: unknown[] };
        const names = (report.metrics ?? []).map((metric) => metric.name);
        if (names.length === 0 || !Array.isArray(report.dateRanges)) return json(response, 400, { error: { code: 400, status: "INVALID_ARGUMENT" } });
        const ga = values.ga4 as Record<string, number>;
        return json(response, 200, {
          metricHeaders: names.map((name) => ({ name, type: "TYPE_INTEGER" })),
          rows: [{ metricValues: names.map((name) => ({ value: String(ga[name] ?? 0) })) }],
          rowCount: 1,
          metadata: { currencyCode: "USD", timeZone: "Europe/Berlin" },
          kind: "analyticsData#runReport",
        });
      }
      case "stripe.balance":
        if (bearer(headers) !== secrets.stripeKey) return unauthorized(response, which, bearer(headers));
        return json(response, 200, {
          object: "balance",
          available: values.stripe.available.map((funds) => ({ ...funds, source_types: { card: funds.amount } })),
          connect_reserved: [{ amount: 0, currency: "usd" }],
          livemode: false,
          pending: values.stripe.pending.map((funds) => ({ ...funds, source_types: { card: funds.amount } })),
        });
      case "github.repo": {
        if (!headers["user-agent"]) return json(response, 403, { message: "Request forbidden by administrative rules." });
        if (bearer(headers) !== secrets.githubToken) return unauthorized(response, which, bearer(headers));
        if (headers.accept !== "application/vnd.github+json" || headers["x-github-api-version"] !== "2022-11-28") {
          return json(response, 400, { message: "Bad request" });
        }
        if (path !== `/repos/${secrets.githubRepository}`) {
          return json(response, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest", status: "404" });
        }
        const [owner = "", name = ""] = secrets.githubRepository.split("/");
        return json(response, 200, {
          id: 1296269,
          node_id: "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
          name,
          full_name: secrets.githubRepository,
          owner: { login: owner, id: 1, type: "Organization" },
          private: false,
          html_url: `https://github.com/${secrets.githubRepository}`,
          stargazers_count: values.github.stars,
          watchers_count: values.github.stars,
          forks_count: values.github.forks,
          open_issues_count: values.github.openIssues,
          subscribers_count: values.github.watchers,
          default_branch: "main",
        });
      }
      case "plausible.query": {
        if (bearer(headers) !== secrets.plausibleKey) return unauthorized(response, which, bearer(headers));
        const query = JSON.parse(body) as { site_id?: string; metrics?: string[]; date_range?: unknown };
        if (query.site_id !== secrets.plausibleSiteId) {
          return json(response, 400, { error: `Site does not exist or user does not have access to it.` });
        }
        if (JSON.stringify(query.metrics) !== JSON.stringify(["visitors", "pageviews"]) || !Array.isArray(query.date_range)) {
          return json(response, 400, { error: "Invalid query" });
        }
        return json(response, 200, {
          results: [{ metrics: [values.plausible.visitors, values.plausible.pageviews], dimensions: [] }],
          meta: {},
          query: { ...query, filters: [], dimensions: [], order_by: [["visitors", "desc"]] },
        });
      }
      case "openai.chat": {
        if (bearer(headers) !== secrets.openaiKey) return unauthorized(response, which, bearer(headers));
        const chat = JSON.parse(body) as { model?: string; messages?: unknown[] };
        if (!chat.model || !Array.isArray(chat.messages)) return json(response, 400, { error: { message: "bad request" } });
        return json(response, 200, {
          id: "chatcmpl-fake123",
          object: "chat.completion",
          created: 1_700_000_000,
          model: chat.model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: values.insightText, refusal: null },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 },
        });
      }
      case "anthropic.messages": {
        if (headers["x-api-key"] !== secrets.anthropicKey) {
          return unauthorized(response, which, String(headers["x-api-key"]));
        }
        if (headers["anthropic-version"] !== "2023-06-01") return json(response, 400, { type: "error" });
        const message = JSON.parse(body) as { model?: string; max_tokens?: number; messages?: unknown[] };
        if (!message.model || !message.max_tokens || !Array.isArray(message.messages)) {
          return json(response, 400, { type: "error", error: { type: "invalid_request_error", message: "bad" } });
        }
        return json(response, 200, {
          id: "msg_fake123",
          type: "message",
          role: "assistant",
          model: message.model,
          content: [{ type: "text", text: values.insightText }],
          stop_reason: "end_turn",
          stop_sequence: null,
          usage: { input_tokens: 120, output_tokens: 30 },
        });
      }
      case "openai.models":
        if (bearer(headers) !== secrets.openaiKey) return unauthorized(response, which, bearer(headers));
        return json(response, 200, {
          object: "list",
          data: [{ id: "gpt-4o-mini", object: "model", created: 1_721_172_741, owned_by: "system" }],
        });
      case "anthropic.models":
        if (headers["x-api-key"] !== secrets.anthropicKey) {
          return unauthorized(response, which, String(headers["x-api-key"]));
        }
        return json(response, 200, {
          data: [{ type: "model", id: "claude-haiku-4-5", display_name: "Claude Haiku 4.5", created_at: "2025-10-01T00:00:00Z" }],
          has_more: false,
          first_id: "claude-haiku-4-5",
          last_id: "claude-haiku-4-5",
        });
    }
  };

  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => handle(request, response, body));
  });
  // No server-side idle or request timeouts: fetch (undici) keeps sockets alive and reuses them, and when a busy
  // test stalls the one event loop for seconds, the server's 5 s keep-alive timeout closed sockets the client
  // was just reusing (ECONNRESET, "other side closed": GitHub "unavailable" in a 1,000-connection cycle). A
  // real provider is not on the client's event loop; the transport's own timeout still bounds every request.
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    values,
    oauth,
    setMode: (which, mode) => void modes.set(which, mode),
    hugeBytesSent: () => hugeBytes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
