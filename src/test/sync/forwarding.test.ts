// The sync engine's internal functions moved from metricsSync.ts to sync/; for one release the old paths
// forward to the same functions (docs/architecture.md, "Deploying"), so work scheduled under them before the
// deploy still runs.
import { expect, test, vi } from "vitest";
import { internal } from "../../convex/_generated/api";
import * as forwarding from "../../convex/metricsSync";
import { recordSyncOutcomes } from "../../convex/sync/outcomes";
import { syncGroup } from "../../convex/sync/run";
import { scheduleDueSyncs } from "../../convex/sync/schedule";
import { newBackend } from "../helpers/convex";
import { useFakeProviders } from "../helpers/secrets";
import { connection, metricsOf, setup } from "../helpers/syncRows";

const fake = useFakeProviders();

test("metricsSync exports the same 3 function objects as sync/, and nothing else", () => {
  expect(Object.keys(forwarding).sort()).toEqual(["recordSyncOutcomes", "scheduleDueSyncs", "syncGroup"]);
  expect(forwarding.scheduleDueSyncs).toBe(scheduleDueSyncs);
  expect(forwarding.syncGroup).toBe(syncGroup);
  expect(forwarding.recordSyncOutcomes).toBe(recordSyncOutcomes);
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
