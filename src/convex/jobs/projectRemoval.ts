/**
 * Removing a project (projects.remove, owners only), in batches.
 *
 * The mutation deletes the project row first, so every function answers
 * NOT_FOUND for it at once, records `project.removed` in the remover's own
 * audit log (ownerId, no projectId: it outlives the project), and runs the
 * first batch. Each batch deletes up to ROWS_PER_BATCH rows, step by step
 * (STEPS: connections first, so nothing syncs or refreshes any more; their
 * OAuth grants are queued for revocation at the provider through
 * oauth.queueRevocation, whose audit entries then go to the remover), and
 * schedules the next batch until every step is done. A second pass runs
 * SWEEP_DELAY_MS later and deletes what actions that were already running
 * wrote meanwhile (a sync's audit entries, an insight being saved).
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Doc, Id } from "../_generated/dataModel";
import { internalMutation, type MutationCtx } from "../_generated/server";
import { forgetBucketsOf } from "../access/rateLimits";
import { recordAudit } from "../audit/trail";
import { queueRevocation } from "../oauth";

/** Rows one batch deletes (each read once, by index): 1,000 documents read and written at most. */
export const ROWS_PER_BATCH = 1000;
/**
 * When the second pass runs: after every action that may have been running
 * when the project was removed (Convex stops actions after 30 minutes at
 * most, Node.js actions after 10) and after the revocation backstop (15 minutes).
 */
export const SWEEP_DELAY_MS = 31 * 60_000;

/** The tables a project's rows live in, in the order they are deleted. */
export const STEPS = [
  "connections",
  "oauthStates",
  "invitations",
  "apiKeys",
  "projectMembers",
  "insights",
  "metricRollups",
  "metrics",
  "auditLog",
] as const;
type Step = (typeof STEPS)[number];
const stepValidator = v.union(...STEPS.map((step) => v.literal(step)));

/** Up to `limit` of the project's rows of `step`, by index. */
async function rowsOf(ctx: MutationCtx, step: Step, projectId: Id<"projects">, limit: number): Promise<Doc<Step>[]> {
  switch (step) {
    case "connections":
      return ctx.db.query(step).withIndex("by_projectId", (q) => q.eq("projectId", projectId)).take(limit);
    case "oauthStates":
      return ctx.db.query(step).withIndex("by_projectId", (q) => q.eq("projectId", projectId)).take(limit);
    case "invitations":
      return ctx.db.query(step).withIndex("by_projectId_and_state", (q) => q.eq("projectId", projectId)).take(limit);
    case "apiKeys":
      return ctx.db.query(step).withIndex("by_projectId", (q) => q.eq("projectId", projectId)).take(limit);
    case "projectMembers":
      return ctx.db.query(step).withIndex("by_projectId_and_userId", (q) => q.eq("projectId", projectId)).take(limit);
    case "insights":
      return ctx.db.query(step).withIndex("by_projectId", (q) => q.eq("projectId", projectId)).take(limit);
    case "metricRollups":
      return ctx.db.query(step).withIndex("by_projectId", (q) => q.eq("projectId", projectId)).take(limit);
    case "metrics":
      return ctx.db.query(step).withIndex("by_projectId_and_timestamp", (q) => q.eq("projectId", projectId)).take(limit);
    case "auditLog":
      return ctx.db.query(step).withIndex("by_projectId_and_at", (q) => q.eq("projectId", projectId)).take(limit);
  }
}

/**
 * Deletes up to `limit` rows of `step`; the number deleted. A connection's
 * OAuth grant is queued for revocation first, and its manual-sync bucket goes with it.
 */
async function deleteRows(ctx: MutationCtx, step: Step, projectId: Id<"projects">, limit: number): Promise<number> {
  const rows = await rowsOf(ctx, step, projectId, limit);
  for (const row of rows) {
    if (step === "connections") {
      const connection = row as Doc<"connections">;
      await queueRevocation(ctx, connection);
      await forgetBucketsOf(ctx, { connectionId: connection._id });
    }
    await ctx.db.delete(step, row._id);
  }
  return rows.length;
}

/**
 * One batch: deletes up to ROWS_PER_BATCH rows from `step` on, then
 * schedules the next batch, the second pass (after the first), or nothing.
 */
async function purge(ctx: MutationCtx, projectId: Id<"projects">, step: Step, pass: number) {
  let budget = ROWS_PER_BATCH;
  let index = STEPS.indexOf(step);
  let deleted = 0;
  while (index < STEPS.length && budget > 0) {
    const current = STEPS[index]!;
    const count = await deleteRows(ctx, current, projectId, budget);
    deleted += count;
    budget -= count;
    if (count > 0 && budget === 0) break; // this step may have more: the next batch looks again
    index++;
  }
  if (index < STEPS.length) {
    await ctx.scheduler.runAfter(0, internal.jobs.projectRemoval.purgeBatch, { projectId, step: STEPS[index]!, pass });
  } else {
    await forgetBucketsOf(ctx, { projectId });
    if (pass === 1) {
      await ctx.scheduler.runAfter(SWEEP_DELAY_MS, internal.jobs.projectRemoval.purgeBatch, { projectId, step: STEPS[0], pass: 2 });
    }
  }
  return { deleted, done: index >= STEPS.length };
}

/**
 * Removes a project (the caller checked the owner role): the row at once,
 * the audit entry in the remover's own log, then its rows in batches.
 */
export async function removeProject(ctx: MutationCtx, project: Doc<"projects">, removedBy: Id<"users">): Promise<void> {
  await ctx.db.delete("projects", project._id);
  await recordAudit(ctx, {
    action: "project.removed",
    actorId: removedBy,
    ownerId: removedBy,
    targetTable: "projects",
    targetId: project._id,
    detail: `name: ${JSON.stringify(project.name)}`,
  });
  await purge(ctx, project._id, STEPS[0], 1);
}

/** A batch of a project's removal (removeProject schedules the first). */
export const purgeBatch = internalMutation({
  args: { projectId: v.id("projects"), step: stepValidator, pass: v.number() },
  returns: v.object({ deleted: v.number(), done: v.boolean() }),
  handler: async (ctx, { projectId, step, pass }) => purge(ctx, projectId, step, pass),
});
