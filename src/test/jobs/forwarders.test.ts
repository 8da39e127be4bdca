// Internal functions moved by issue 17 keep their old paths for one release
// (docs/architecture.md, "Deploying"): a batch scheduled under an old path
// before the deploy, or an operator's `npx convex run <old path>`, still runs
// the same function, and the batches it schedules go to the new path.
import { expect, test } from "vitest";
import { internal } from "../../convex/_generated/api";
import * as backfill from "../../convex/metricHistory/backfill";
import * as oldMetricRollups from "../../convex/metricRollups";
import * as oldMetricsSync from "../../convex/metricsSync";
import * as oldRateLimits from "../../convex/rateLimits";
import * as rateLimits from "../../convex/access/rateLimits";
import * as oldProjectRemoval from "../../convex/projectRemoval";
import * as oldRetention from "../../convex/retention";
import * as projectRemoval from "../../convex/jobs/projectRemoval";
import * as retention from "../../convex/jobs/retention";
import * as syncOutcomes from "../../convex/sync/outcomes";
import * as syncRun from "../../convex/sync/run";
import * as syncSchedule from "../../convex/sync/schedule";
import architectureDoc from "../../../docs/architecture.md?raw";
import { newBackend } from "../helpers/convex";
import { seedConnection, seedProject } from "../helpers/seed";

/** Old path → the function object now registered at the new path. */
const FORWARDED = [
  ["retention:start", oldRetention.start, "jobs/retention:start", retention.start],
  ["retention:purgeBatch", oldRetention.purgeBatch, "jobs/retention:purgeBatch", retention.purgeBatch],
  ["projectRemoval:purgeBatch", oldProjectRemoval.purgeBatch, "jobs/projectRemoval:purgeBatch", projectRemoval.purgeBatch],
  ["metricRollups:backfill", oldMetricRollups.backfill, "metricHistory/backfill:run", backfill.run],
  ["metricsSync:scheduleDueSyncs", oldMetricsSync.scheduleDueSyncs, "sync/schedule:scheduleDueSyncs", syncSchedule.scheduleDueSyncs],
  ["metricsSync:syncGroup", oldMetricsSync.syncGroup, "sync/run:syncGroup", syncRun.syncGroup],
  ["metricsSync:recordSyncOutcomes", oldMetricsSync.recordSyncOutcomes, "sync/outcomes:recordSyncOutcomes", syncOutcomes.recordSyncOutcomes],
  ["rateLimits:deleteRefilledBuckets", oldRateLimits.deleteRefilledBuckets, "access/rateLimits:deleteRefilledBuckets", rateLimits.deleteRefilledBuckets],
] as const;

test.each(FORWARDED)("%s is the same function as %s, and docs/architecture.md lists the pair", (oldPath, old, newPath, moved) => {
  expect(old).toBe(moved);
  const deploying = architectureDoc.slice(architectureDoc.indexOf("## Deploying"));
  expect(deploying).toMatch(new RegExp(`\`${oldPath}\`[^\\n]*\`${newPath}\``));
});

test("a batch under an old path runs, and what it schedules runs under the new path", async () => {
  const t = newBackend();
  const { projectId } = await seedProject(t, { alice: "owner" });
  const connectionId = await seedConnection(t, projectId, "stripe", { secretKey: "sk_test_forwarders00000000000" });
  await t.run(async (ctx) => {
    for (let i = 0; i < 3; i++) await ctx.db.insert("metrics", { connectionId, projectId, name: "mrr.usd", value: i, timestamp: Date.now() });
  });

  expect(await t.mutation(internal.metricRollups.backfill, { batchSize: 2 })).toEqual({ folded: 2, done: false });
  const scheduled = await t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
  expect(scheduled.map((call) => call.name)).toEqual(["metricHistory/backfill:run"]);
  await t.finishAllScheduledFunctions(() => undefined);
  expect(await t.run(async (ctx) => (await ctx.db.query("metricRollups").collect()).length)).toBe(2);

  expect(await t.mutation(internal.retention.purgeBatch, { table: "metrics", before: Date.now() + 1 })).toEqual({ deleted: 3 });
});
