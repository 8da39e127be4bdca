// GitHub answers its rate limits (primary and secondary) with HTTP 403, like a refused token: a 403 with
// Retry-After, with `x-ratelimit-remaining: 0`, or whose body says "secondary rate limit" is a transient
// rate limit (status error, backoff honouring the provider's retry time, capped), never needs_reauth; any
// other 403 still parks the connection until the user acts.
import { describe, expect, onTestFinished, test, vi } from "vitest";
import { api } from "../../convex/_generated/api";
import { rateLimitOf } from "../../convex/providers/transport";
import { MAX_BACKOFF_MS, NOT_SCHEDULED, nextAttemptAfterFailure, nextSyncSlot } from "../../convex/sync/policy";
import { newBackend } from "../helpers/convex";
import { RATE_LIMIT_RESET_S, RATE_LIMIT_RETRY_AFTER_S, type Mode } from "../helpers/fakeProviders";
import { useFakeProviders } from "../helpers/secrets";
import { auditOf, connection, setup } from "../helpers/syncRows";

const fake = useFakeProviders();
const MINUTE = 60_000;
const RATE_LIMITED = "GitHub is rate limiting requests; try again later (HTTP 403)";

describe("GitHub 403 rate limits through a sync", () => {
  test.each(["rate_limit_retry_after", "rate_limit_quota", "rate_limit_body"] as const)(
    "%s: status error with the rate-limit message, not needs_reauth; due again later",
    async (mode: Mode) => {
      const t = newBackend();
      const { connectionId, alice } = await setup(t);
      fake().setMode("github.repo", mode);
      const before = Date.now();

      const result = await alice.action(api.connections.syncMetrics, { connectionId });

      expect(result).toEqual({ status: "error", metricsStored: 0, error: RATE_LIMITED });
      const row = await connection(t, connectionId);
      expect(row).toMatchObject({ status: "error", lastError: RATE_LIMITED, syncFailures: 1 });
      expect(row.nextSyncAt).toBeGreaterThan(before);
      expect(row.nextSyncAt).toBeLessThan(NOT_SCHEDULED);
      expect((await auditOf(t, connectionId)).map((entry) => entry.action)).toEqual(["connection.credentials_decrypted"]);
    },
  );

  test(`Retry-After (${RATE_LIMIT_RETRY_AFTER_S} s) is honoured when it is later than the backoff (1-minute interval)`, async () => {
    vi.stubEnv("SYNC_INTERVAL_MINUTES", "1");
    onTestFinished(() => void vi.stubEnv("SYNC_INTERVAL_MINUTES", ""));
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    fake().setMode("github.repo", "rate_limit_retry_after");
    const before = Date.now();
    await alice.action(api.connections.syncMetrics, { connectionId });
    const { nextSyncAt } = await connection(t, connectionId);
    // The backoff alone would allow the next slot, 30 to 90 s away; GitHub asked for 90 s.
    expect(nextSyncAt).toBeGreaterThanOrEqual(before + RATE_LIMIT_RETRY_AFTER_S * 1000);
    expect(nextSyncAt! % MINUTE).toBe(0);
    expect(nextSyncAt).toBeLessThanOrEqual(Date.now() + RATE_LIMIT_RETRY_AFTER_S * 1000 + MINUTE);
  });

  test(`x-ratelimit-reset (${RATE_LIMIT_RESET_S / 60} min ahead) is honoured: due at the first slot after it, not in 15 minutes`, async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    fake().setMode("github.repo", "rate_limit_quota");
    const before = Date.now();
    await alice.action(api.connections.syncMetrics, { connectionId });
    const { nextSyncAt } = await connection(t, connectionId);
    const interval = 15 * MINUTE;
    const resetAt = Math.floor(before / 1000) * 1000 + RATE_LIMIT_RESET_S * 1000;
    expect(nextSyncAt).toBeGreaterThanOrEqual(resetAt);
    expect(nextSyncAt! % interval).toBe(0);
    expect(nextSyncAt! - resetAt).toBeLessThan(interval + 2000);
  });

  test.each([403, "forbidden_padded"] as const)("a real 403 (%s) still parks the connection: needs_reauth", async (mode) => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    fake().setMode("github.repo", mode);
    const result = await alice.action(api.connections.syncMetrics, { connectionId });
    expect(result.status).toBe("needs_reauth");
    expect(result.error).toMatch(/^GitHub rejected the credentials \(HTTP 403\)/);
    expect(await connection(t, connectionId)).toMatchObject({ status: "needs_reauth", nextSyncAt: NOT_SCHEDULED });
  });
});

describe("rateLimitOf (transport): which error answers are rate limits, and when to retry", () => {
  const now = Date.UTC(2026, 11, 3, 12, 0, 0);
  const headers = (entries: Record<string, string>) => new Headers(entries);

  test("403 with Retry-After in seconds or as an HTTP date", () => {
    expect(rateLimitOf(403, headers({ "retry-after": "120" }), now)).toEqual({ retryAt: now + 120_000 });
    expect(rateLimitOf(403, headers({ "retry-after": new Date(now + 300_000).toUTCString() }), now)).toEqual({ retryAt: now + 300_000 });
  });

  test("403 with the quota used up: retry at x-ratelimit-reset; without a readable reset, no time", () => {
    const reset = String((now + 1_800_000) / 1000);
    expect(rateLimitOf(403, headers({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset }), now)).toEqual({ retryAt: now + 1_800_000 });
    expect(rateLimitOf(403, headers({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": "soon" }), now)).toEqual({ retryAt: null });
  });

  test("429 always, with or without a time; 401 and a plain 403 never", () => {
    expect(rateLimitOf(429, headers({}), now)).toEqual({ retryAt: null });
    expect(rateLimitOf(429, headers({ "retry-after": "5" }), now)).toEqual({ retryAt: now + 5000 });
    expect(rateLimitOf(403, headers({ "x-ratelimit-remaining": "4999" }), now)).toBeNull();
    expect(rateLimitOf(403, headers({}), now)).toBeNull();
    expect(rateLimitOf(401, headers({ "retry-after": "60" }), now)).toBeNull();
  });

  test("a retry time is clamped between now and a day ahead", () => {
    expect(rateLimitOf(403, headers({ "retry-after": "864000" }), now)).toEqual({ retryAt: now + 86_400_000 });
    expect(rateLimitOf(403, headers({ "retry-after": new Date(now - 60_000).toUTCString() }), now)).toEqual({ retryAt: now });
  });
});

describe("nextAttemptAfterFailure with the provider's retry time", () => {
  const interval = 15 * MINUTE;
  const now = 1_000 * interval + 7 * MINUTE;

  test("earlier than the backoff: the backoff", () => {
    expect(nextAttemptAfterFailure(now, 1, interval, now + MINUTE)).toBe(nextAttemptAfterFailure(now, 1, interval));
  });

  test("later: the first slot at or after it", () => {
    expect(nextAttemptAfterFailure(now, 1, interval, now + 50 * MINUTE)).toBe(1_004 * interval);
  });

  test(`capped at the longest backoff (${MAX_BACKOFF_MS / 3_600_000} h)`, () => {
    const capped = nextAttemptAfterFailure(now, 1, interval, now + 3 * 24 * 60 * MINUTE);
    expect(capped).toBe(nextSyncSlot(now + MAX_BACKOFF_MS - interval, interval));
    expect(capped - now).toBeLessThanOrEqual(MAX_BACKOFF_MS + interval / 2);
  });
});
