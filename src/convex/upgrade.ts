/**
 * The upgrade from the original Dashtray's data is the re-encryption job
 * (keyRotation.ts, reencryption/job.ts): the same walk re-encrypts values
 * under old keys and brings the original's rows to the current shape. These
 * names stay for operators and runbooks written before the two were one job
 * (docs/upgrade.md).
 */
import { v } from "convex/values";
import { internalAction, internalMutation } from "./_generated/server";
import { readStatus, startJob, startResult } from "./keyRotation";
import { statusValidator, type Status } from "./reencryption/validators";

/** `npx convex run upgrade:run`: starts (or joins, or resumes) the re-encryption job, as keyRotation:rotate does. */
export const run = internalMutation({
  args: { dryRun: v.optional(v.boolean()) },
  returns: startResult,
  handler: (ctx, { dryRun = false }) => startJob(ctx, dryRun, false),
});

/** `npx convex run upgrade:status`: keyRotation:status. */
export const status = internalAction({
  args: {},
  returns: statusValidator,
  handler: (ctx): Promise<Status> => readStatus(ctx),
});
