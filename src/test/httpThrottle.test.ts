// Failed authentications on the HTTP API are throttled per source (the
// client IP Convex reports) and per key prefix, with 429 and Retry-After,
// while a valid key sent from a clean source always gets through.
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import { AUTH_FAILURE_LIMITS } from "../convex/access/rateLimits";
import { projectWithEveryRole, type ProjectFixture } from "./helpers/api";
import { newBackend, type Backend } from "./helpers/convex";

const METRICS_PATH = "/api/v1/projects/metrics";
const BURST = AUTH_FAILURE_LIMITS.apiAuthFailureBySource.capacity;
/** Time for one failure token to come back (both limits refill at the same rate). */
const ONE_TOKEN_MS = AUTH_FAILURE_LIMITS.apiAuthFailureBySource.period / AUTH_FAILURE_LIMITS.apiAuthFailureBySource.rate;

let t: Backend;
let project: ProjectFixture;
let validKey: string;

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
  t = newBackend();
  project = await projectWithEveryRole(t);
  ({ apiKey: validKey } = await project.admin.mutation(api.apiKeys.create, { projectId: project.projectId, name: "CI" }));
});

afterEach(() => {
  vi.useRealTimers();
});

function fetchFrom(ip: string, apiKey: string) {
  return t.withRequestMetadata({ ip }).fetch(METRICS_PATH, { method: "GET", headers: { Authorization: `Bearer ${apiKey}` } });
}

/** A dt_live_ key that does not exist, with the given 12-character prefix. */
function wrongKey(n: number, prefix = "dt_live_Zzzz") {
  return `${prefix}${String(n).padStart(39, "0")}`;
}

async function statusesFrom(ip: string, keys: string[]): Promise<number[]> {
  const statuses: number[] = [];
  for (const key of keys) statuses.push((await fetchFrom(ip, key)).status);
  return statuses;
}

describe("per source", () => {
  test(`after ${BURST} failures a source gets 429 with Retry-After, valid key or not; other sources are not slowed`, async () => {
    const attacker = "198.51.100.7";
    const failures = await statusesFrom(attacker, Array.from({ length: BURST }, (_, n) => wrongKey(n, `dt_live_${String(n).padStart(4, "0")}`)));
    expect(failures).toEqual(Array(BURST).fill(401));

    const refused = await fetchFrom(attacker, wrongKey(999));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe(String(Math.ceil(ONE_TOKEN_MS / 1000)));
    expect(await refused.json()).toEqual({ error: "too_many_requests" });
    // A throttled source learns nothing about keys, not even that one is valid.
    expect((await fetchFrom(attacker, validKey)).status).toBe(429);

    expect((await fetchFrom("203.0.113.9", validKey)).status).toBe(200);
    expect((await fetchFrom("203.0.113.9", wrongKey(1000))).status).toBe(401);

    // One failure's worth later, the source is answered again (and refused right after).
    vi.setSystemTime(Date.now() + ONE_TOKEN_MS);
    expect(await statusesFrom(attacker, [wrongKey(1001), wrongKey(1002)])).toEqual([401, 429]);
  });

  test("refused requests cost no write, and successful ones never touch the buckets", async () => {
    for (let n = 0; n < 5; n++) expect((await fetchFrom("192.0.2.1", validKey)).status).toBe(200);
    expect(await t.run((ctx) => ctx.db.query("rateLimits").collect())).toEqual([]);

    await statusesFrom("198.51.100.7", Array.from({ length: BURST + 5 }, (_, n) => wrongKey(n)));
    const buckets = await t.run((ctx) => ctx.db.query("rateLimits").collect());
    expect(buckets.map((bucket) => [bucket.name, bucket.key, bucket.value])).toEqual([
      ["apiAuthFailureBySource", "ip:198.51.100.7", 0],
      ["apiAuthFailureByPrefix", "dt_live_Zzzz", 0],
    ]);
  });
});

describe("per key prefix", () => {
  test("failures spread over many sources exhaust a prefix; the valid key with that prefix still works from a clean source", async () => {
    const prefix = validKey.slice(0, 12);
    // A distributed guesser: 20 sources, one wrong key each, all with the valid key's (public) prefix.
    for (let n = 0; n < BURST; n++) expect((await fetchFrom(`10.0.0.${n}`, wrongKey(n, prefix))).status).toBe(401);

    // Each of those sources has failed recently: it gets no more answers for this prefix...
    const refused = await fetchFrom("10.0.0.3", wrongKey(100, prefix));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await fetchFrom("10.0.0.3", validKey)).status).toBe(429);
    // ...but still for other prefixes.
    expect((await fetchFrom("10.0.0.3", wrongKey(101))).status).toBe(401);

    // The key's owner, sending from an address that has not failed, is not slowed at all.
    for (let n = 0; n < 3; n++) expect((await fetchFrom("192.0.2.10", validKey)).status).toBe(200);

    // Once a failed source's bucket is full again, it is answered again.
    vi.setSystemTime(Date.now() + 2 * ONE_TOKEN_MS);
    expect((await fetchFrom("10.0.0.3", validKey)).status).toBe(200);
  });

  test("tokens that are not dt_live_ keys write no shared bucket: 50 failures from 50 sources write 50 per-source documents and nothing else", async () => {
    const legacyLike = "legacy0123456789abcdef0123456789abcdef";
    for (let i = 0; i < 50; i++) expect((await fetchFrom(`198.51.100.${i}`, legacyLike)).status).toBe(401);
    const buckets = await t.run((ctx) => ctx.db.query("rateLimits").collect());
    expect(buckets.map((bucket) => bucket.key).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `ip:198.51.100.${i}`).sort());
    expect(buckets.every((bucket) => bucket.name === "apiAuthFailureBySource")).toBe(true);
    expect(JSON.stringify(buckets)).not.toContain(legacyLike.slice(0, 6));
  });
});
