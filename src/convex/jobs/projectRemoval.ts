/**
 * Removing a project (projects.remove, owners only), in batches.
 *
 * The mutation deletes the project row first, so every function answers
 * NOT_FOUND for it at once, records `project.removed` in the remover's own
 * audit log (ownerId, no projectId: it outlives the project), and runs the
 * first batch. Each batch deletes up to ROWS_PER_BATCH rows, step by step
 * (STEPS: connections first, so nothing syncs or refreshes any more; their
 * OAuth grants are queued for revocation at the provider through
 * oauth/revocation.ts queueRevocation, whose audit entries then go to the remover), and
 * schedules the next batch until every step is done. A second pass runs
 * SWEEP_DELAY_MS later and deletes what actions that were already running
 * wrote meanwhile (a sync's audit entries, an insight being saved).
 */
import type { Indexes, NamedTableInfo } from "convex/server";
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { DataModel, Doc, Id } from "../_generated/dataModel";
import { internalMutation, type MutationCtx } from "../_generated/server";
import { forgetBucketsOf } from "../access/rateLimits";
import { recordAudit } from "../audit/trail";
import { queueRevocation } from "../oauth/revocation";
import { runBatch } from "./batches";

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

/** The indexes of `table` whose first field is projectId. */
type ProjectIndex<T extends Step> = {
  [I in keyof Indexes<NamedTableInfo<DataModel, T>>]: Indexes<NamedTableInfo<DataModel, T>>[I] extends ["projectId", ...unknown[]]
    ? I
    : never;
}[keyof Indexes<NamedTableInfo<DataModel, T>>];

/** Each step's index that starts with projectId (checked against the schema by the type). */
const PROJECT_INDEX: { [T in Step]: ProjectIndex<T> } = {
  connections: "by_projectId",
  oauthStates: "by_projectId",
  invitations: "by_projectId_and_state",
  apiKeys: "by_projectId",
  projectMembers: "by_projectId_and_userId",
  insights: "by_projectId",
  metricRollups: "by_projectId",
  metrics: "by_projectId_and_timestamp",
  auditLog: "by_projectId_and_at",
};

/** Up to `limit` of the project's rows of `step`, by its PROJECT_INDEX. */
function rowsOf(ctx: MutationCtx, step: Step, projectId: Id<"projects">, limit: number): Promise<Doc<Step>[]> {
  // One query for every step: TypeScript cannot follow a union of tables through withIndex, so it is
  // typed as one of them; PROJECT_INDEX's type checks each step's index starts with projectId.
  return ctx.db
    .query(step as "connections")
    .withIndex(PROJECT_INDEX[step] as "by_projectId", (q) => q.eq("projectId", projectId))
    .take(limit);
}

/** A row of the project's, with the step (table) it belongs to. */
interface StepRow {
  step: Step;
  doc: Doc<Step>;
}

/** Up to `limit` of the project's rows from `step` on, in STEPS order. */
async function rowsFrom(ctx: MutationCtx, projectId: Id<"projects">, step: Step, limit: number): Promise<StepRow[]> {
  const found: StepRow[] = [];
  for (const current of STEPS.slice(STEPS.indexOf(step))) {
    if (found.length === limit) break;
    for (const doc of await rowsOf(ctx, current, projectId, limit - found.length)) found.push({ step: current, doc });
  }
  return found;
}

/**
 * Deletes one row. A connection's OAuth grant is queued for revocation
 * first, and its manual-sync bucket goes with it.
 */
async function deleteRow(ctx: MutationCtx, { step, doc }: StepRow): Promise<void> {
  if (step === "connections") {
    const connection = doc as Doc<"connections">;
    await queueRevocation(ctx, connection);
    await forgetBucketsOf(ctx, { connectionId: connection._id });
  }
  await ctx.db.delete(step, doc._id);
}

/**
 * One batch (jobs/batches.ts): deletes up to ROWS_PER_BATCH rows from `step`
 * on, then schedules the next batch at the step of the last row it deleted,
 * the second pass (after the first), or nothing.
 */
async function purge(ctx: MutationCtx, projectId: Id<"projects">, step: Step, pass: number) {
  const { read, done } = await runBatch(ctx, {
    size: ROWS_PER_BATCH,
    read: (limit) => rowsFrom(ctx, projectId, step, limit),
    handle: (row) => deleteRow(ctx, row),
    next: internal.jobs.projectRemoval.purgeBatch,
    continueAfter: (last) => ({ projectId, step: last.step, pass }),
  });
  if (done) {
    await forgetBucketsOf(ctx, { projectId });
    if (pass === 1) {
      await ctx.scheduler.runAfter(SWEEP_DELAY_MS, internal.jobs.projectRemoval.purgeBatch, { projectId, step: STEPS[0], pass: 2 });
    }
  }
  return { deleted: read, done };
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
  handler: (ctx, { projectId, step, pass }): Promise<{ deleted: number; done: boolean }> => purge(ctx, projectId, step, pass),
});
