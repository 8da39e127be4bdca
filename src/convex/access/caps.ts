/**
 * Caps on what one project or sync may hold, so reads of them stay bounded
 * (MAX_CONNECTIONS, MAX_METRICS_PER_SYNC; a project's members: roles.ts
 * MAX_MEMBERS), and per-user caps, so one account cannot make the
 * deployment's background work (every connection is synced each interval,
 * whoever looks) grow without bound: projects a user owns, and connections
 * across the projects they own. A project's owner, for caps and for the sync cron's fair shares, is
 * the user who created it (projects.createdBy). Refusals are LIMIT_REACHED
 * with the cap's `reason` and `limit`.
 */
import type { Id } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";
import { appError } from "../errors";

/** Most connections a project can have; connections.list returns all of them. */
export const MAX_CONNECTIONS = 100;
/** Most points one sync stores for a connection (a Stripe account has one pair per currency). */
export const MAX_METRICS_PER_SYNC = 50;

/** Most projects one user may own (create). */
export const MAX_PROJECTS_PER_USER = 20;
/** Most connections across the projects one user owns (a project alone holds at most MAX_CONNECTIONS). */
export const MAX_CONNECTIONS_PER_USER = 100;

/** LIMIT_REACHED unless `userId` may own one more project. */
export async function assertCanOwnAnotherProject(ctx: Pick<QueryCtx, "db">, userId: Id<"users">): Promise<void> {
  const owned = await ctx.db
    .query("projects")
    .withIndex("by_createdBy", (q) => q.eq("createdBy", userId))
    .take(MAX_PROJECTS_PER_USER);
  if (owned.length >= MAX_PROJECTS_PER_USER) {
    throw appError("LIMIT_REACHED", `A user can own at most ${MAX_PROJECTS_PER_USER} projects: remove one first`, {
      reason: "PROJECTS_PER_USER",
      limit: MAX_PROJECTS_PER_USER,
    });
  }
}

/**
 * LIMIT_REACHED unless the owner of `projectId` may have one more
 * connection across the projects they own. Reads at most
 * MAX_PROJECTS_PER_USER projects and MAX_CONNECTIONS_PER_USER connections.
 */
export async function assertOwnerCanAddConnection(ctx: Pick<QueryCtx, "db">, projectId: Id<"projects">): Promise<void> {
  const project = await ctx.db.get("projects", projectId);
  if (!project) return;
  const owned = await ctx.db
    .query("projects")
    .withIndex("by_createdBy", (q) => q.eq("createdBy", project.createdBy))
    .take(MAX_PROJECTS_PER_USER + 1);
  let connections = 0;
  for (const { _id } of owned) {
    const left = MAX_CONNECTIONS_PER_USER - connections;
    if (left <= 0) break;
    connections += (
      await ctx.db
        .query("connections")
        .withIndex("by_projectId", (q) => q.eq("projectId", _id))
        .take(left)
    ).length;
  }
  if (connections >= MAX_CONNECTIONS_PER_USER) {
    throw appError(
      "LIMIT_REACHED",
      `The project's owner has ${MAX_CONNECTIONS_PER_USER} connections across their projects, the most allowed: remove one first`,
      { reason: "CONNECTIONS_PER_USER", limit: MAX_CONNECTIONS_PER_USER },
    );
  }
}
