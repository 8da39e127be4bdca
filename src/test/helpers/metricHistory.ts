/**
 * Metric history as months of syncs would have left it: raw points every
 * `stepMs` and their hourly and daily rollups, inserted directly (folding
 * 8,640 points through metricRollups.recordRollups one by one takes
 * convex-test over a minute: its index reads scan the table). The rollups
 * are folded here from the definition in docs/api.md (UTC buckets; the
 * newest value, its time, min and max), independently of metricHistory/rollups.ts;
 * metricRollups.test.ts checks that syncs write exactly this fold.
 */
import type { Id } from "../../convex/_generated/dataModel";
import type { Backend } from "./convex";

const HOUR = 60 * 60 * 1000;
const SIZES = { hour: HOUR, day: 24 * HOUR } as const;

export interface FoldedRollup {
  resolution: "hour" | "day";
  start: number;
  last: number;
  lastAt: number;
  min: number;
  max: number;
}

/** The hourly and daily rollups of `points`, keyed by resolution and start. */
export function foldRollups(points: readonly { value: number; at: number }[]): FoldedRollup[] {
  const buckets = new Map<string, FoldedRollup>();
  for (const { value, at } of points) {
    for (const resolution of ["hour", "day"] as const) {
      const start = at - (at % SIZES[resolution]);
      const key = `${resolution}:${start}`;
      const bucket = buckets.get(key);
      if (!bucket) {
        buckets.set(key, { resolution, start, last: value, lastAt: at, min: value, max: value });
        continue;
      }
      if (at >= bucket.lastAt) Object.assign(bucket, { last: value, lastAt: at });
      bucket.min = Math.min(bucket.min, value);
      bucket.max = Math.max(bucket.max, value);
    }
  }
  return [...buckets.values()];
}

/** A value that drifts up over time (a star count), for realistic charts. */
function valueAt(index: number): number {
  return 1000 + Math.floor(index / 10);
}

/** Points every `stepMs` from `from` to `to` (inclusive): raw rows and rollups. */
export async function seedMetricHistory(
  t: Pick<Backend, "run">,
  target: { connectionId: Id<"connections">; projectId: Id<"projects"> },
  name: string,
  from: number,
  to: number,
  stepMs = 15 * 60_000,
): Promise<{ rawPoints: number }> {
  const points: { value: number; at: number }[] = [];
  for (let at = from, i = 0; at <= to; at += stepMs, i++) points.push({ value: valueAt(i), at });
  for (let offset = 0; offset < points.length; offset += 2000) {
    const chunk = points.slice(offset, offset + 2000);
    await t.run(async (ctx) => {
      for (const { value, at } of chunk) await ctx.db.insert("metrics", { ...target, name, value, timestamp: at });
    });
  }
  const rollups = foldRollups(points);
  for (let offset = 0; offset < rollups.length; offset += 2000) {
    const chunk = rollups.slice(offset, offset + 2000);
    await t.run(async (ctx) => {
      for (const rollup of chunk) await ctx.db.insert("metricRollups", { ...target, name, ...rollup });
    });
  }
  return { rawPoints: points.length };
}
