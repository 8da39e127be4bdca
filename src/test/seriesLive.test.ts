// metrics.series on a chart ending now: a rollup keeps only its bucket's
// newest value, so a sync landing after `to` in the bucket `to` falls in must
// still give the chart its last point (docs/api.md, metrics).
import { afterEach, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { projectWithEveryRole } from "./helpers/api";
import { newBackend } from "./helpers/convex";
import { seedConnection } from "./helpers/seed";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

afterEach(() => {
  vi.useRealTimers();
});

test("a chart mounted with `to` = now shows the value of a sync landing later in the same bucket", async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  const firstSync = Date.UTC(2026, 0, 1, 12, 0);
  vi.setSystemTime(firstSync);
  const t = newBackend();
  const { projectId, member } = await projectWithEveryRole(t);
  const connectionId = await seedConnection(t, projectId, "github", { token: "ghp_serieslive00000000000000000000000000", repository: "a/b" });
  const sync = (value: number) =>
    t.mutation(internal.sync.outcomes.recordSyncOutcomes, {
      outcomes: [{ connectionId, credentialsVersion: 1, outcome: { kind: "synced", metrics: [{ name: "stars", value }] } }],
    });
  // Daily syncs for 30 days, at noon UTC.
  for (let day = 0; day < 30; day++) {
    vi.setSystemTime(firstSync + day * DAY);
    await sync(100 + day);
  }
  const now = Date.now();
  const chart = { connectionId, name: "stars", from: now - 30 * DAY, to: now + MINUTE };
  const before = await member.query(api.metrics.series, chart);
  expect(before.resolution).toBe("day");
  expect(before.points.at(-1)?.value).toBe(129);

  // The next sync, 15 minutes later in the same UTC day: the open chart re-runs with the same arguments.
  vi.setSystemTime(now + 15 * MINUTE);
  await sync(500);
  const after = await member.query(api.metrics.series, chart);
  expect(after.points.length).toBe(before.points.length);
  expect(after.points.at(-1)).toEqual({ at: now + 15 * MINUTE, value: 500, min: 129, max: 500 });
  expect(after.points.at(-2)?.value).toBe(128);
});
