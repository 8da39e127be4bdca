import { v } from "convex/values";
import { internal } from "./_generated/api";
import { appError } from "./errors";
import { userAction } from "./functions";
import { syncConnectionNow } from "./metricsSync";
import { syncResultValidator, type SyncResult } from "./validators";

/**
 * Syncs a connection's metrics now (any member of its project). A provider
 * failure (bad key, rate limit, outage, timeout) is returned as status
 * "error" with a safe message and kept on the connection; earlier metrics
 * stay. Stored credentials that do not decrypt throw DECRYPTION_FAILED.
 */
export const syncMetrics = userAction({
  args: { connectionId: v.id("connections") },
  returns: syncResultValidator,
  handler: async (ctx, { connectionId }): Promise<SyncResult> => {
    await ctx.runQuery(internal.metricsSync.authorizeSync, { connectionId, userId: ctx.user?._id ?? null });
    const result = await syncConnectionNow(ctx, connectionId, { actorId: ctx.user?._id });
    if (!result) throw appError("NOT_FOUND", "Connection not found");
    return result;
  },
});
