/**
 * What each secret-touching public function costs in production, where
 * every execution is cold: PBKDF2 runs per call, counted at crypto.subtle by
 * the cold harness (helpers/cold.ts), never by the project's own counters.
 * Targets (issue 13): at most one PBKDF2 per call per master key actually
 * used; old master keys are derived only when a value under them is read.
 * Counting only: no timing.
 */
import { describe, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { Keyring } from "../convex/lib/keyring";
import { revocationDelayMs } from "../convex/oauth/revocation";
import { readEncryptionSettings, recordKeyIdOrder } from "../convex/storedSecrets/encryption";
import { maxPbkdf2, useColdHarness, type ColdCounts } from "./helpers/cold";
import { CASES, world, type Case, type World } from "./helpers/costCases";
import { SECOND_MASTER_KEY, TEST_MASTER_KEY, THIRD_MASTER_KEY } from "./helpers/keys";
import { SECRETS, useFakeProviders } from "./helpers/secrets";

const harness = useColdHarness();
const fake = useFakeProviders();

/** Per-execution PBKDF2 runs, for failure messages. */
function breakdown(counts: ColdCounts): string {
  return counts.executions.map((execution) => `${execution.path}=${execution.pbkdf2}`).join(", ");
}

/** Runs `call` cold and checks the PBKDF2 runs of the whole call (all its executions) against `limit`. */
async function expectCost(w: World, testCase: Case, limit: number): Promise<ColdCounts> {
  const { counts } = await harness.measure(() => testCase.call(w));
  expect(counts.executions.length, "the call ran through the harness").toBeGreaterThan(0);
  expect(counts.pbkdf2, `${testCase.name}: PBKDF2 runs per call (${breakdown(counts)})`).toBeLessThanOrEqual(limit);
  expect(maxPbkdf2(counts)).toBeLessThanOrEqual(limit);
  return counts;
}

/**
 * Records the configured keys' ids as keyRotation.rotate does when a job
 * starts (keyRotation.test.ts checks that it does): the hints decrypting
 * calls read with the root salt. Written directly so that no rotation batch
 * runs underneath the measured call.
 */
async function recordKeyIdsAsRotateDoes(w: World, current: string, previous: string[]): Promise<void> {
  await w.t.run(async (ctx) => {
    const { rootSalt } = await readEncryptionSettings(ctx.db);
    const keyring = Keyring.fromSecrets(current, previous, rootSalt);
    const v2 = await Promise.all(keyring.all.map((key) => key.keyId()));
    const v1 = await Promise.all(keyring.all.map((key) => key.v1KeyId()));
    await recordKeyIdOrder(ctx.db, { v2, v1 });
  });
}

describe("cold PBKDF2 runs per call", () => {
  describe("without OLD_MASTER_KEY: at most 1", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        const w = await world(harness);
        const counts = await expectCost(w, testCase, 1);
        if (testCase.reads || testCase.writes) expect(counts.pbkdf2, "a secret was really touched").toBe(1);
      });
    }
  });

  describe("OLD_MASTER_KEY set, every value under the current key: still at most 1 (old keys never derived on load)", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        vi.stubEnv("OLD_MASTER_KEY", `${SECOND_MASTER_KEY},${THIRD_MASTER_KEY}`);
        const w = await world(harness);
        await expectCost(w, testCase, 1);
      });
    }
  });

  describe("while rotating (one old key, values under it): at most 1 + the old key when a value under it is read", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        const w = await world(harness);
        vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
        vi.stubEnv("OLD_MASTER_KEY", TEST_MASTER_KEY);
        await expectCost(w, testCase, 1 + (testCase.reads ? 1 : 0));
      });
    }
  });

  describe("while rotating (two old keys, values under the second, the job's key id hints recorded): 1 + the old key met", () => {
    for (const testCase of CASES) {
      test(testCase.name, async () => {
        const w = await world(harness);
        vi.stubEnv("MASTER_ENCRYPTION_KEY", SECOND_MASTER_KEY);
        vi.stubEnv("OLD_MASTER_KEY", `${THIRD_MASTER_KEY},${TEST_MASTER_KEY}`);
        await recordKeyIdsAsRotateDoes(w, SECOND_MASTER_KEY, [THIRD_MASTER_KEY, TEST_MASTER_KEY]);
        const counts = await expectCost(w, testCase, 1 + (testCase.reads ? 1 : 0));
        // The value names its key and the hint says which entry that is: no other root is derived.
        if (testCase.reads) expect(counts.pbkdf2, "only the old key the value is under").toBe(1);
      });
    }
  });
});

describe("functions that touch no stored secret derive nothing", () => {
  test("ai.verifyKey checks the key it is given (no decryption, no PBKDF2)", async () => {
    const w = await world(harness);
    const { counts } = await harness.measure(() =>
      w.alice.action(api.ai.verifyKey, { provider: "openai", apiKey: SECRETS.openaiKey }),
    );
    expect(fake().requests.some((request) => request.route === "openai.models")).toBe(true);
    expect(counts.pbkdf2).toBe(0);
  });
});

describe("OAuth connections (every call under one master key: at most 1)", () => {
  const SETTINGS = { propertyId: SECRETS.gaPropertyId };

  /** startOAuth as alice, the user consents at the fake, the browser comes back, alice finishes: the connection id. */
  async function connectOAuth(w: World): Promise<Id<"connections">> {
    const { authorizationUrl } = await w.alice.mutation(api.connections.startOAuth, {
      projectId: w.projectId,
      service: "google_analytics",
      settings: SETTINGS,
    });
    const response = await w.t.fetch(fake().oauth.authorize(authorizationUrl).callbackPath);
    const location = new URL(response.headers.get("Location") ?? "");
    expect(location.searchParams.get("oauth")).toBe("received");
    const { connectionId } = await w.alice.action(api.connections.finishOAuth, { flow: location.searchParams.get("flow") ?? "" });
    return connectionId;
  }

  test("connections.startOAuth (encrypts the PKCE verifier), the /oauth/callback HTTP action (encrypts the code) and finishOAuth (opens both, encrypts the tokens)", async () => {
    const w = await world(harness);
    const start = await harness.measure(() =>
      w.alice.mutation(api.connections.startOAuth, { projectId: w.projectId, service: "google_analytics", settings: SETTINGS }),
    );
    expect(start.counts.pbkdf2, breakdown(start.counts)).toBe(1);
    const callback = await harness.measure(() => w.t.fetch(fake().oauth.authorize(start.result.authorizationUrl).callbackPath));
    expect(callback.result.status).toBe(302);
    expect(callback.counts.executions[0]?.path).toBe("http:GET /oauth/callback");
    expect(callback.counts.pbkdf2, breakdown(callback.counts)).toBeLessThanOrEqual(1);
    expect(maxPbkdf2(callback.counts)).toBeLessThanOrEqual(1);
    const flow = new URL(callback.result.headers.get("Location") ?? "").searchParams.get("flow") ?? "";
    const finish = await harness.measure(() => w.alice.action(api.connections.finishOAuth, { flow }));
    expect(finish.result.connectionId).toBeTruthy();
    expect(finish.counts.pbkdf2, breakdown(finish.counts)).toBeLessThanOrEqual(1);
    expect(maxPbkdf2(finish.counts)).toBeLessThanOrEqual(1);
  });

  test("a sync that refreshes the access token (decrypts, then encrypts the new tokens)", async () => {
    fake().oauth.accessTokenLifetimeSeconds = 60; // inside the refresh margin
    const w = await world(harness);
    const connectionId = await connectOAuth(w);
    const { counts, result } = await harness.measure(() => w.alice.action(api.connections.syncMetrics, { connectionId }));
    expect(result).toMatchObject({ status: "active" });
    expect(fake().requests.some((request) => request.route === "google.token")).toBe(true);
    expect(counts.pbkdf2, breakdown(counts)).toBeLessThanOrEqual(1);
  });

  test("removing an OAuth connection: the scheduled revocation decrypts the grant", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const w = await world(harness);
    const connectionId = await connectOAuth(w);
    const { counts } = await harness.measure(async () => {
      await w.alice.mutation(api.connections.remove, { connectionId });
      // The revocation is due revocationDelayMs after the removal.
      await w.t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(revocationDelayMs()));
    });
    expect(fake().oauth.revoked).toHaveLength(1);
    expect(counts.pbkdf2, breakdown(counts)).toBeLessThanOrEqual(1);
  });
});
