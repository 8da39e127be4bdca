/**
 * The HTTP API for programs holding a platform API key (apiKeys.ts).
 *
 * GET /api/v1/projects/metrics with `Authorization: Bearer <api key>` returns
 * the latest metrics of the key's project. A missing, malformed, unknown or
 * revoked key gets the same bare 401, so responses say nothing about keys.
 *
 * Failed authentications are throttled (429 with Retry-After) per source
 * and per key prefix (apiKeys.authenticate; access/rateLimits.ts authThrottledUntil for the rule), and
 * requestSource for what "source" is.
 *
 * GET /oauth/callback is where OAuth providers send the browser back after
 * connections.startOAuth (oauth/callback.ts handleOAuthCallback); unknown states are
 * throttled per source like failed API authentications; a known state is
 * never throttled.
 */
import { httpRouter } from "convex/server";
import { internal } from "./_generated/api";
import { httpAction, type ActionCtx } from "./_generated/server";
import { retryAfterSeconds } from "./access/rateLimits";
import { API_KEY_PREFIX, DISPLAY_PREFIX_LENGTH } from "./storedSecrets/registry";
import { sha256Hex } from "./lib/hash";
import { handleOAuthCallback } from "./oauth/callback";
import { OAUTH_CALLBACK_PATH } from "./oauth/provider";

/** Longest Authorization value worth hashing; real keys are about 50 characters. */
const MAX_API_KEY_LENGTH = 200;

const JSON_HEADERS = { "Content-Type": "application/json", "Cache-Control": "no-store" };

function unauthorized(): Response {
  return new Response(JSON.stringify({ error: "unauthorized" }), {
    status: 401,
    headers: { ...JSON_HEADERS, "WWW-Authenticate": "Bearer" },
  });
}

/** 429 with Retry-After (whole seconds, at least 1) until `until`. */
function tooManyRequests(until: number, now: number): Response {
  return new Response(JSON.stringify({ error: "too_many_requests" }), {
    status: 429,
    headers: { ...JSON_HEADERS, "Retry-After": String(retryAfterSeconds(until, now)) },
  });
}

/**
 * Who sent the request, for per-source throttling: the client IP Convex
 * reports in the request metadata. Convex takes it from the first
 * X-Forwarded-For entry, else from the connection's peer address; so where
 * nothing in front of the deployment replaces that header, a client can
 * choose its own "source". Per-source limits therefore only slow clients
 * that do not forge it, and nothing else depends on them (see the prefix rule
 * in authThrottledUntil and docs/api.md). The header is never parsed here.
 */
async function requestSource(ctx: ActionCtx): Promise<string> {
  const { ip } = await ctx.meta.getRequestMetadata();
  return ip ? `ip:${ip}` : "unknown";
}

/**
 * The prefix bucket of a presented key: its display prefix ("dt_live_" and
 * 4 random characters, which members see in apiKeys.list) for tokens shaped
 * like current keys; null (no prefix bucket, only the source's) for
 * anything else (keys issued by older versions, and garbage): no part of an
 * unknown token is ever stored, and a flood of them shares no document.
 */
function keyPrefixBucket(apiKey: string): string | null {
  return apiKey.startsWith(API_KEY_PREFIX) && apiKey.length > DISPLAY_PREFIX_LENGTH ? apiKey.slice(0, DISPLAY_PREFIX_LENGTH) : null;
}

/**
 * The API key of a `Bearer` Authorization header, or null when there is none
 * of a plausible length. Keys need not start with "dt_live_": keys issued by
 * older versions (hashed by the rotation job's migration) keep working.
 */
function bearerApiKey(request: Request): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("Authorization") ?? "");
  const apiKey = match?.[1];
  if (!apiKey || apiKey.length > MAX_API_KEY_LENGTH) return null;
  return apiKey;
}

const projectMetrics = httpAction(async (ctx, request) => {
  const apiKey = bearerApiKey(request);
  // No header worth checking: answered without any function call, so there is nothing to throttle.
  if (!apiKey) return unauthorized();
  // Only the hash crosses into the mutation: function arguments can be logged.
  const auth = await ctx.runMutation(internal.apiKeys.authenticate, {
    keyHash: await sha256Hex(apiKey),
    source: await requestSource(ctx),
    prefix: keyPrefixBucket(apiKey),
  });
  if (auth.kind === "throttled") return tooManyRequests(auth.until, Date.now());
  if (auth.kind === "unauthorized") return unauthorized();
  const { projectId } = auth;
  const metrics = await ctx.runQuery(internal.projects.latestMetrics, { projectId });
  return new Response(JSON.stringify({ projectId, metrics }), { status: 200, headers: JSON_HEADERS });
});

const http = httpRouter();

http.route({ path: "/api/v1/projects/metrics", method: "GET", handler: projectMetrics });
http.route({
  path: OAUTH_CALLBACK_PATH,
  method: "GET",
  handler: httpAction(async (ctx, request) => handleOAuthCallback(ctx, request, await requestSource(ctx))),
});

export default http;
