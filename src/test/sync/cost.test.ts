// Counted cold: one cron cycle syncs every due connection once with at most
// 0.2 function executions per connection and one PBKDF2 per group of up to
// SYNC_GROUP_SIZE connections (of any projects), over 40 connections in 4
// projects and 200 in 20. 1,000 in 100 or 1,000 in 1,000 take 40–70 s in
// convex-test on 2 cores, too close to the test timeout: `npm run bench`
// (src/bench/syncFleet.bench.ts) counts and asserts them.
import { expect, test, vi } from "vitest";
import { SYNC_GROUP_SIZE } from "../../convex/sync/policy";
import { measureCycle, newColdBackend, seedSyncFleet } from "../helpers/syncCost";
import { useFakeProviders } from "../helpers/secrets";

const fake = useFakeProviders();

test.each([
  { projects: 4, perProject: 10 },
  { projects: 20, perProject: 10 },
])("one cold cycle over $projects projects × $perProject connections", async ({ projects, perProject }) => {
  // convex-test starts every group action at once (Convex queues them): hundreds of requests in flight
  // on a busy event loop would outlast the suite's 1 s provider timeout.
  vi.stubEnv("PROVIDER_TIMEOUT_MS", "60000");
  const { t, counter } = newColdBackend();
  const ids = await seedSyncFleet(t, projects, perProject);

  const cost = await measureCycle(t, counter, fake(), ids, projects);
  process.stdout.write(`sync cost: ${JSON.stringify(cost)}\n`);

  expect(cost.providerRequests).toBe(ids.length);
  expect(cost.syncedOnce).toBe(ids.length);
  const groups = Math.ceil(ids.length / SYNC_GROUP_SIZE);
  expect(cost.executions).toBeLessThanOrEqual(0.2 * ids.length);
  expect(cost.pbkdf2).toBeLessThanOrEqual(groups);
  // The counter sees real work: a cron page plus 3 calls per group, and one root derivation per group.
  expect(cost.executions).toBeGreaterThanOrEqual(1 + 3 * groups);
  expect(cost.pbkdf2).toBe(groups);
});
