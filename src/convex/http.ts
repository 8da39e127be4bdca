/**
 * The HTTP API for programs holding a platform API key (apiKeys.ts).
 *
 * GET /api/v1/projects/metrics with `Authorization: Bearer <api key>` returns
 * the latest metrics of the key's project. A missing, malformed, unknown or
 * revoked key gets the same bare 401, so responses say nothing about keys.
 *
 * GET /oauth/callback is where OAuth providers send the browser back after
 * connections.startOAuth (oauth.ts handleOAuthCallback).
 */
import { httpRouter } from "convex/server";
import { internal } from "./_generated/api";
import { httpAction } from "./_generated/server";
import { usageIsStale } from "./apiKeys";
import { sha256Hex } from "./lib/hash";
import { OAUTH_CALLBACK_PATH, handleOAuthCallback } from "./oauth";

/** Longest Authorization value worth hashing; real keys are about 50 characters. */
const MAX_API_KEY_LENGTH = 200;

const JSON_HEADERS = { "Content-Type": "application/json", "Cache-Control": "no-store" };

function unauthorized(): Response {
  return new Response(JSON.stringify({ error: "unauthorized" }), {
    status: 401,
    headers: { ...JSON_HEADERS, "WWW-Authenticate": "Bearer" },
  });
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
  if (!apiKey) return unauthorized();
  // Only the hash crosses into the query: function arguments can be logged.
  const key = await ctx.runQuery(internal.apiKeys.authenticate, { keyHash: await sha256Hex(apiKey) });
  if (!key) return unauthorized();
  // A write only when lastUsedAt is out of date (about once a minute per key), not on every request.
  if (usageIsStale(key.lastUsedAt, Date.now())) await ctx.runMutation(internal.apiKeys.recordUse, { apiKeyId: key.apiKeyId });
  const { projectId } = key;
  const metrics = await ctx.runQuery(internal.projects.latestMetrics, { projectId });
  return new Response(JSON.stringify({ projectId, metrics }), { status: 200, headers: JSON_HEADERS });
});

const http = httpRouter();

http.route({ path: "/api/v1/projects/metrics", method: "GET", handler: projectMetrics });
http.route({ path: OAUTH_CALLBACK_PATH, method: "GET", handler: httpAction(handleOAuthCallback) });

export default http;
