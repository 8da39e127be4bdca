/**
 * The sync cron's fan-out (crons.ts runs scheduleDueSyncs every minute): it
 * reads the connections whose nextSyncAt has passed (by_nextSyncAt index),
 * moves each to its next slot (so no later run picks it again), and
 * schedules one sync/run.ts syncGroup action per group of up to
 * SYNC_GROUP_SIZE connections of any projects that need the same PBKDF2
 * run. The policy it applies (slots, groups, fair shares, backoff) is in
 * sync/policy.ts. A group costs 3 function executions (the action,
 * beginSync, recordSyncOutcomes) and at most one PBKDF2, so a cycle costs
 * about 3 / SYNC_GROUP_SIZE executions per connection plus one scheduling
 * mutation per DUE_PAGE_SIZE connections.
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import { internalMutation } from "../_generated/server";
import { derivationGroupOf } from "../storedSecrets/registry";
import {
  DEFERRAL_MS,
  DUE_PAGE_SIZE,
  MAX_GROUPS_PER_RUN,
  MAX_PAGES_PER_RUN,
  NOT_SCHEDULED,
  OWNER_SHARE_PER_RUN,
  nextSyncSlot,
  planGroups,
  syncIntervalMs,
} from "./policy";

const ownerCountValidator = v.object({ ownerId: v.id("users"), count: v.number() });

/**
 * One page of a cron run: reads up to DUE_PAGE_SIZE due connections
 * (nextSyncAt passed, or absent: rows from before scheduling by due time)
 * and, for each:
 * - needs_reauth or paused (inactive; rows paused before pausing took them
 *   out of the index): never due again until the user acts (NOT_SCHEDULED);
 * - beyond its owner's share of this run (OWNER_SHARE_PER_RUN; the owner is
 *   the project's creator): deferred by DEFERRAL_MS, behind everyone else;
 * - otherwise moved to the next slot and put in a group (planGroups).
 * Schedules one syncGroup per group and continues in another mutation
 * while more are due, up to MAX_GROUPS_PER_RUN groups and MAX_PAGES_PER_RUN
 * pages per run; connections left over stay due for the next run.
 */
export const scheduleDueSyncs = internalMutation({
  args: {
    /** Group actions this run may still start; the cron starts with none (MAX_GROUPS_PER_RUN). */
    groupsLeft: v.optional(v.number()),
    /** Pages this run may still read. */
    pagesLeft: v.optional(v.number()),
    /** Connections each owner got in this run's earlier pages. */
    owners: v.optional(v.array(ownerCountValidator)),
  },
  returns: v.null(),
  handler: async (ctx, { groupsLeft = MAX_GROUPS_PER_RUN, pagesLeft = MAX_PAGES_PER_RUN, owners = [] }) => {
    const now = Date.now();
    const intervalMs = syncIntervalMs();
    const nextSlot = nextSyncSlot(now, intervalMs);
    const due = await ctx.db
      .query("connections")
      .withIndex("by_nextSyncAt", (q) => q.lte("nextSyncAt", now))
      .take(DUE_PAGE_SIZE + 1);
    const taken = new Map(owners.map(({ ownerId, count }) => [ownerId, count]));
    const ownerOf = new Map<Id<"projects">, Id<"users"> | null>();
    const candidates: { connectionId: Id<"connections">; groupKey: string }[] = [];
    for (const connection of due.slice(0, DUE_PAGE_SIZE)) {
      if (connection.status === "needs_reauth" || connection.status === "inactive") {
        // Waiting for the user (new credentials, a reconnect, resume): never due until then.
        await ctx.db.patch("connections", connection._id, { nextSyncAt: NOT_SCHEDULED });
        continue;
      }
      if (!ownerOf.has(connection.projectId)) {
        ownerOf.set(connection.projectId, (await ctx.db.get("projects", connection.projectId))?.createdBy ?? null);
      }
      const ownerId = ownerOf.get(connection.projectId) ?? null;
      if (ownerId !== null) {
        const count = taken.get(ownerId) ?? 0;
        if (count >= OWNER_SHARE_PER_RUN) {
          await ctx.db.patch("connections", connection._id, { nextSyncAt: now + DEFERRAL_MS });
          continue;
        }
        taken.set(ownerId, count + 1);
      }
      candidates.push({ connectionId: connection._id, groupKey: derivationGroupOf(connection.projectId, connection.encryptedCredentials) });
    }
    // Groups beyond this run's budget stay due (not moved): the next run starts with them.
    const planned = planGroups(candidates);
    const groups = planned.slice(0, Math.max(0, groupsLeft));
    for (const group of groups) {
      for (const { connectionId } of group) await ctx.db.patch("connections", connectionId, { nextSyncAt: nextSlot });
      await ctx.scheduler.runAfter(0, internal.sync.run.syncGroup, { connectionIds: group.map(({ connectionId }) => connectionId) });
    }
    const remaining = groupsLeft - groups.length;
    const budgetReached = groups.length < planned.length;
    if (due.length > DUE_PAGE_SIZE && !budgetReached && remaining > 0 && pagesLeft > 1) {
      await ctx.scheduler.runAfter(0, internal.sync.schedule.scheduleDueSyncs, {
        groupsLeft: remaining,
        pagesLeft: pagesLeft - 1,
        owners: [...taken].map(([ownerId, count]) => ({ ownerId, count })),
      });
    }
    return null;
  },
});
