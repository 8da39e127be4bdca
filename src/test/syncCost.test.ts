// The "done when", counted cold: one cron cycle syncs every due
// connection once with at most 0.5 function executions per connection and
// at most 2 PBKDF2 runs per project, over 40 connections in 4 projects and
// 200 in 20. 1,000 in 100 takes 25–35 s in convex-test on 2 cores, too close
// to the test timeout: `npm run bench` (src/bench/syncGroups.bench.ts) counts and
// asserts it, next to the previous design.
import { expect, test, vi } from "vitest";
import { measureCycle, newColdBackend, seedSyncFleet } from "./helpers/syncCost";
import { useFakeProviders } from "./helpers/secrets";

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
  expect(cost.executions).toBeLessThanOrEqual(0.5 * ids.length);
  expect(cost.pbkdf2).toBeLessThanOrEqual(2 * projects);
  // The counter sees real work: a cron page plus 4 calls per project group, and the keyring's derivations.
  expect(cost.executions).toBeGreaterThanOrEqual(1 + 4 * projects);
  expect(cost.pbkdf2).toBeGreaterThanOrEqual(projects);
});
