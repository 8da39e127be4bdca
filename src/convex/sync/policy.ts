/**
 * When connections are synced, and how they are grouped: the pure policy
 * behind the sync cron (sync/schedule.ts scheduleDueSyncs) and the outcomes it
 * stores. No database access here.
 *
 * - Slots: every connection falls due on one deployment-wide grid (one
 *   interval apart), so a cron run finds the fleet's due connections
 *   together and fills its group actions (SYNC_GROUP_SIZE each) however
 *   connections spread over projects.
 * - Groups: connections of any projects whose ciphertexts need the same
 *   PBKDF2 run share an action (storedSecrets/registry.ts derivationGroupOf): format v2 values under one
 *   master key share one root derivation, so a group costs at most one
 *   PBKDF2; v1 and original-format values derive per project, so they are
 *   grouped per project (and per key).
 * - Backoff: an authentication failure (401/403, a revoked grant) parks the
 *   connection (needs_reauth, never due) until the user updates its
 *   credentials or reconnects; other failures wait exponentially longer, up
 *   to MAX_BACKOFF_MS.
 * - Fairness: a cron run gives each owner at most OWNER_SHARE_PER_RUN
 *   connections; the rest wait for the next run, behind everyone else's.
 */
import { env } from "../env";
import { envNumber } from "../lib/envNumber";

/** Window of windowed metrics (e.g. Plausible visitors): the last 24 hours. */
export const SYNC_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Most points one sync stores: a cap on stored data, defined with the others (access/caps.ts). */
export { MAX_METRICS_PER_SYNC } from "../access/caps";
/** Default time between two syncs of a connection; SYNC_INTERVAL_MINUTES overrides it. */
export const DEFAULT_SYNC_INTERVAL_MINUTES = 15;
/** Most connections one group action syncs (one PBKDF2, one audit mutation, one outcome mutation). */
export const SYNC_GROUP_SIZE = 25;
/** Provider requests one group action has in flight at once. */
export const PROVIDER_CONCURRENCY = 4;
/** Due connections one scheduling mutation reads; a run with more continues in another mutation. */
export const DUE_PAGE_SIZE = 250;
/** Most group actions one cron run starts; connections beyond stay due and go in the next run. */
export const MAX_GROUPS_PER_RUN = 200;
/** Most scheduling pages one cron run reads (so deferred connections cannot keep a run going). */
export const MAX_PAGES_PER_RUN = 40;
/** Most connections of one owner a cron run syncs; the rest wait for the next run. */
export const OWNER_SHARE_PER_RUN = 100;
/** How long an owner's connections beyond their share wait: one cron period. */
export const DEFERRAL_MS = 60_000;
/** Longest wait between two attempts of a connection that keeps failing for a transient reason. */
export const MAX_BACKOFF_MS = 6 * 60 * 60 * 1000;
/**
 * nextSyncAt of a connection that is never due (needs_reauth, paused:
 * sync/pause.ts): after any cron run's "now", so the cron's index
 * range never reaches it. Absent nextSyncAt is different: rows from before
 * scheduling by due time, which are due.
 */
export const NOT_SCHEDULED = Number.MAX_SAFE_INTEGER;
/** Weight of the latest sync in healthScore, a moving average of successes (0–100). */
const HEALTH_WEIGHT = 0.3;

/** The health score after a sync: recent syncs weigh most, one failure from 100 gives 70. */
export function nextHealthScore(previous: number, succeeded: boolean): number {
  const score = (1 - HEALTH_WEIGHT) * previous + HEALTH_WEIGHT * (succeeded ? 100 : 0);
  return Math.min(100, Math.max(0, Math.round(score)));
}

/** Time between two syncs of a connection, in ms: SYNC_INTERVAL_MINUTES (at least 1) if set to a number, else 15 minutes. */
export function syncIntervalMs(): number {
  const minutes = envNumber(env.SYNC_INTERVAL_MINUTES, DEFAULT_SYNC_INTERVAL_MINUTES, { atLeast: 1 });
  return Math.round(minutes * 60_000);
}

/**
 * When a connection synced at `now` is due next: the first slot of the
 * deployment-wide grid (multiples of the interval) more than half an
 * interval after `now`, so between half an interval and 1.5 intervals
 * later. Every connection lands on the same slots, whatever its project and
 * whenever it was created or manually synced, so one cron run groups them.
 */
export function nextSyncSlot(now: number, intervalMs: number = syncIntervalMs()): number {
  return (Math.floor((now + intervalMs / 2) / intervalMs) + 1) * intervalMs;
}

/**
 * When a connection that failed for a transient reason `failures` times in
 * a row (≥ 1) is tried again: the slot after interval × 2^(failures − 1),
 * at most MAX_BACKOFF_MS (15 min, 30, 1 h, 2 h, 4 h, then 6 h by default).
 * When the provider said when to try again (`retryAt`, a rate limit's
 * Retry-After or quota reset), not before the first slot at or after it,
 * but never later than the backoff's cap.
 */
export function nextAttemptAfterFailure(now: number, failures: number, intervalMs: number = syncIntervalMs(), retryAt?: number): number {
  const wait = Math.min(MAX_BACKOFF_MS, intervalMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  const backoff = nextSyncSlot(now + wait - intervalMs, intervalMs);
  if (retryAt === undefined || retryAt <= backoff) return backoff;
  const latest = nextSyncSlot(now + MAX_BACKOFF_MS - intervalMs, intervalMs);
  return Math.min(Math.ceil(retryAt / intervalMs) * intervalMs, latest);
}

/** Provider error kinds that only the user can fix (new credentials, a new grant): the connection is parked. */
export const USER_ACTION_KINDS: readonly string[] = ["unauthorized", "invalid_grant"];

/** Splits due connections into groups of at most SYNC_GROUP_SIZE, one group key per group; order kept within a key. */
export function planGroups<T extends { groupKey: string }>(items: readonly T[], size: number = SYNC_GROUP_SIZE): T[][] {
  const byKey = new Map<string, T[]>();
  for (const item of items) {
    const list = byKey.get(item.groupKey) ?? [];
    list.push(item);
    byKey.set(item.groupKey, list);
  }
  const groups: T[][] = [];
  // "none" needs no derivation: it fills up v2 groups rather than taking an action of its own.
  const none = byKey.get("none") ?? [];
  byKey.delete("none");
  const keys = [...byKey.keys()];
  const firstV2 = keys.find((key) => key.startsWith("v2:"));
  if (firstV2 !== undefined) byKey.get(firstV2)!.push(...none);
  else if (none.length > 0) byKey.set("none", none);
  for (const list of byKey.values()) {
    for (let i = 0; i < list.length; i += size) groups.push(list.slice(i, i + size));
  }
  return groups;
}
