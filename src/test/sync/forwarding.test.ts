// The sync engine's internal functions moved from metricsSync.ts to sync/; for one release the old paths
// forward to the same functions (docs/architecture.md, "Deploying"; the pairs are checked with the other
// forwarders in jobs/forwarders.test.ts), so work scheduled under them before the deploy still runs.
import { expect, test, vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import * as forwarding from "../../convex/metricsSync";
import { newBackend } from "../helpers/convex";
import { useFakeProviders } from "../helpers/secrets";
import { connection, metricsOf, setup } from "../helpers/syncRows";

const fake = useFakeProviders();

test("metricsSync exports only its 3 forwarders (each the same function as its new path: jobs/forwarders.test.ts)", () => {
  expect(Object.keys(forwarding).sort()).toEqual(["recordSyncOutcomes", "scheduleDueSyncs", "syncGroup"]);
});

test("a group action and a cron page scheduled under the old paths still sync", async () => {
  const t = newBackend();
  const { connectionId } = await setup(t);
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  await t.run((ctx) => ctx.scheduler.runAfter(0, internal.metricsSync.syncGroup, { connectionIds: [connectionId] }));
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
  expect(await metricsOf(t, connectionId)).toHaveLength(4);
  expect(fake().requests).toHaveLength(1);

  // Due again: a cron page scheduled under the old path picks it up and schedules the group at the new path.
  await t.run((ctx) => ctx.db.patch("connections", connectionId, { nextSyncAt: Date.now() }));
  await t.run((ctx) => ctx.scheduler.runAfter(0, internal.metricsSync.scheduleDueSyncs, {}));
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
  const jobs = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
  expect(jobs.map((job) => `${job.name}:${job.state.kind}`)).toEqual([
    "metricsSync:syncGroup:success",
    "metricsSync:scheduleDueSyncs:success",
    "sync/run:syncGroup:success",
  ]);
  expect((await connection(t, connectionId)).status).toBe("active");
  expect(fake().requests).toHaveLength(2);
  vi.useRealTimers();
});
