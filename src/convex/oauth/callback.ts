/**
 * OAuth stage 2: the provider's redirect to /oauth/callback (start.ts has
 * the overview). It exchanges nothing: it runs without a Dashtray sign-in.
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Doc } from "../_generated/dataModel";
import { internalMutation, internalQuery, type ActionCtx, type QueryCtx } from "../_generated/server";
import { env } from "../env";
import { appErrorCode } from "../errors";
import { randomToken, sha256Hex } from "../lib/hash";
import { recordOAuthCallbackFailure, retryAfterSeconds } from "../access/rateLimits";
import { encryptAuthorizationCode, loadKeyring, readRootSalt } from "../storedSecrets/encryption";
import { FLOW_TOKEN_PATTERN } from "./start";

/** Longest `code` query parameter the callback accepts. */
const MAX_CALLBACK_PARAM_LENGTH = 2048;

/** A flow that still waits for its callback, found by the SHA-256 of its state. */
async function waitingFlow(ctx: QueryCtx, stateHash: string): Promise<Doc<"oauthStates"> | null> {
  const flow = await ctx.db
    .query("oauthStates")
    .withIndex("by_stateHash", (q) => q.eq("stateHash", stateHash))
    .unique();
  return flow && flow.encryptedCode === undefined && flow.encryptedCodeVerifier !== undefined ? flow : null;
}

/**
 * What the callback needs before it writes anything: the flow waiting for
 * this state (its id, project and whether it expired, and the root salt to
 * encrypt the code with), or null for an unknown state.
 */
export const lookupCallback = internalQuery({
  args: { stateHash: v.string() },
  returns: v.object({
    flow: v.union(
      v.object({ stateId: v.id("oauthStates"), projectId: v.id("projects"), expired: v.boolean(), rootSalt: v.union(v.string(), v.null()) }),
      v.null(),
    ),
  }),
  handler: async (ctx, { stateHash }) => {
    const flow = await waitingFlow(ctx, stateHash);
    return {
      flow: flow && {
        stateId: flow._id,
        projectId: flow.projectId,
        expired: flow.expiresAt <= Date.now(),
        rootSalt: await readRootSalt(ctx.db),
      },
    };
  },
});

/** Counts a callback with an unknown state against its source (access/rateLimits.ts); until when the source is refused, or null. */
export const recordCallbackFailure = internalMutation({
  args: { source: v.string() },
  returns: v.union(v.number(), v.null()),
  handler: async (ctx, { source }) => recordOAuthCallbackFailure(ctx, source),
});

/**
 * Records what the callback got for the flow waiting for `stateHash`: the
 * encrypted code and the SHA-256 of a new completion token, which replaces
 * the state's hash (so the state cannot be used again, and only the holder
 * of the completion token can find the flow), or a refusal, which deletes
 * the flow. An expired flow is deleted. Exchanges nothing: that waits for
 * the signed-in user (finishFlow).
 */
export const receiveCallback = internalMutation({
  args: {
    stateHash: v.string(),
    outcome: v.union(
      v.object({ kind: v.literal("code"), stateId: v.id("oauthStates"), encryptedCode: v.string(), completionHash: v.string() }),
      v.object({ kind: v.literal("refused") }),
    ),
  },
  returns: v.union(v.literal("received"), v.literal("refused"), v.literal("expired"), v.literal("unknown")),
  handler: async (ctx, { stateHash, outcome }) => {
    const flow = await waitingFlow(ctx, stateHash);
    if (!flow || (outcome.kind === "code" && outcome.stateId !== flow._id)) return "unknown" as const;
    if (flow.expiresAt <= Date.now()) {
      await ctx.db.delete("oauthStates", flow._id);
      return "expired" as const;
    }
    if (outcome.kind === "refused") {
      await ctx.db.delete("oauthStates", flow._id);
      return "refused" as const;
    }
    await ctx.db.patch("oauthStates", flow._id, { stateHash: outcome.completionHash, encryptedCode: outcome.encryptedCode });
    return "received" as const;
  },
});
/** Why the callback sent the browser back without a flow to finish; the dashboard gets only this code. */
type CallbackFailure = "invalid_state" | "expired" | "denied" | "authorization_failed" | "not_configured" | "internal";

const CALLBACK_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" };

/**
 * A redirect to DASHBOARD_URL carrying `oauth` (received / error) and the
 * flow's completion token or a failure code: never a token, the code or the
 * state. The Referrer-Policy keeps the callback URL (with the code) out of
 * the dashboard's Referer.
 */
function dashboardRedirect(params: Record<string, string>): Response {
  let target: URL | null;
  try {
    target = new URL(env.DASHBOARD_URL?.trim() ?? "");
  } catch {
    target = null;
  }
  if (!target) {
    return new Response("Dashtray: DASHBOARD_URL is not configured on this deployment", {
      status: 500,
      headers: { ...CALLBACK_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
    });
  }
  for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
  return new Response(null, { status: 302, headers: { ...CALLBACK_HEADERS, Location: target.toString() } });
}

function failed(reason: CallbackFailure): Response {
  return dashboardRedirect({ oauth: "error", reason });
}

/** 429 with Retry-After (whole seconds, at least 1) for a source that sent too many unknown states. */
function callbackThrottled(until: number, now: number): Response {
  return new Response("Too many failed sign-ins from this address; try again later", {
    status: 429,
    headers: {
      ...CALLBACK_HEADERS,
      "Content-Type": "text/plain; charset=utf-8",
      "Retry-After": String(retryAfterSeconds(until, now)),
    },
  });
}

/**
 * GET /oauth/callback?code&state (or ?error&state), from the browser the
 * provider sent back. It exchanges nothing: this request carries no
 * Dashtray sign-in, so whoever's browser it is, the grant must not land in
 * a project on the strength of the state alone (anyone who started a flow
 * knows its state and could send its authorization URL to someone else).
 * It encrypts the code onto the flow (receiveCallback) and sends the
 * browser to DASHBOARD_URL with ?oauth=received&flow=<completion token>;
 * the dashboard then calls connections.finishOAuth as the signed-in user.
 * Failures: ?oauth=error&reason=…. A state that is not 43 base64url
 * characters is refused before any function call; a well-formed unknown
 * one counts against the source (`source`, see http.ts requestSource),
 * which gets 429 once its bucket is empty. A known state is never throttled.
 */
export async function handleOAuthCallback(ctx: ActionCtx, request: Request, source: string): Promise<Response> {
  const url = new URL(request.url);
  const state = url.searchParams.get("state") ?? "";
  if (!FLOW_TOKEN_PATTERN.test(state)) return failed("invalid_state");
  const stateHash = await sha256Hex(state);
  // The state is checked first: a known state is never throttled, so no one can get another's callback refused
  // by failing from the address it claims (the source comes from a header clients can set).
  const { flow } = await ctx.runQuery(internal.oauth.callback.lookupCallback, { stateHash });
  if (!flow) {
    const throttledUntil = await ctx.runMutation(internal.oauth.callback.recordCallbackFailure, { source });
    return throttledUntil === null ? failed("invalid_state") : callbackThrottled(throttledUntil, Date.now());
  }
  if (flow.expired) {
    await ctx.runMutation(internal.oauth.callback.receiveCallback, { stateHash, outcome: { kind: "refused" } });
    return failed("expired");
  }
  const code = url.searchParams.get("code");
  const providerError = url.searchParams.get("error");
  if (providerError || !code || code.length > MAX_CALLBACK_PARAM_LENGTH) {
    await ctx.runMutation(internal.oauth.callback.receiveCallback, { stateHash, outcome: { kind: "refused" } });
    return failed(providerError === "access_denied" ? "denied" : "authorization_failed");
  }
  try {
    const keyring = loadKeyring(flow.rootSalt);
    const completionToken = randomToken(32);
    const received = await ctx.runMutation(internal.oauth.callback.receiveCallback, {
      stateHash,
      outcome: {
        kind: "code",
        stateId: flow.stateId,
        encryptedCode: await encryptAuthorizationCode(keyring, flow.projectId, flow.stateId, code),
        completionHash: await sha256Hex(completionToken),
      },
    });
    if (received === "received") return dashboardRedirect({ oauth: "received", flow: completionToken });
    return failed(received === "expired" ? "expired" : "invalid_state");
  } catch (error) {
    const errorCode = appErrorCode(error);
    console.warn(`OAuth callback for project ${flow.projectId} failed: ${errorCode ?? "internal"}`);
    return failed(errorCode === "ENCRYPTION_UNAVAILABLE" ? "not_configured" : "internal");
  }
}
