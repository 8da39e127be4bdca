/**
 * Stored AI insights (written by ai.generateInsight), as the project's
 * members read them: newest first, a page at a time, with who asked for
 * each, when and which model wrote it.
 */
import { paginationOptsValidator, paginationResultValidator } from "convex/server";
import { v } from "convex/values";
import type { Id } from "./_generated/dataModel";
import { projectQuery } from "./access/builders";
import { aiProviderValidator } from "./validators";

/** Most insights one page holds, whatever the client asks for. */
export const MAX_INSIGHTS_PAGE_SIZE = 50;

const listedInsightValidator = v.object({
  insightId: v.id("insights"),
  text: v.string(),
  provider: aiProviderValidator,
  model: v.string(),
  createdAt: v.number(),
  /** The member who asked for it (their name as other members see it; absent once they are gone). */
  askedBy: v.object({ userId: v.id("users"), name: v.optional(v.string()) }),
});

/**
 * The project's insights (members), newest first. Use with
 * usePaginatedQuery; pages hold at most MAX_INSIGHTS_PAGE_SIZE insights.
 * Reads: the page's insights plus one users row per distinct author.
 */
export const list = projectQuery({
  args: { paginationOpts: paginationOptsValidator },
  returns: paginationResultValidator(listedInsightValidator),
  handler: async (ctx, { projectId, paginationOpts }) => {
    const numItems = Math.min(Math.max(paginationOpts.numItems, 1), MAX_INSIGHTS_PAGE_SIZE);
    const result = await ctx.db
      .query("insights")
      .withIndex("by_projectId", (q) => q.eq("projectId", projectId))
      .order("desc")
      .paginate({ ...paginationOpts, numItems });
    const names = new Map<Id<"users">, string | undefined>();
    for (const userId of new Set(result.page.map((insight) => insight.userId))) {
      names.set(userId, (await ctx.db.get("users", userId))?.name);
    }
    return {
      ...result,
      page: result.page.map((insight) => ({
        insightId: insight._id,
        text: insight.text,
        provider: insight.provider,
        model: insight.model,
        createdAt: insight.createdAt,
        askedBy: { userId: insight.userId, name: names.get(insight.userId) },
      })),
    };
  },
});
