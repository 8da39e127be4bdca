/**
 * May this user touch this project? Roles rank owner > admin > member.
 * findProjectRole answers without throwing (for internal functions that
 * re-check a user who is not the caller, and answer "no" as a value);
 * requireProjectRole is the same lookup for the builders, refusing with
 * NOT_FOUND or FORBIDDEN. Nothing here is a Convex function.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";
import { appError } from "../errors";
import type { MemberRole } from "../validators";

/** Most members a project can have; keeps member reads bounded. */
export const MAX_MEMBERS = 100;

/** Members of a project, bounded by MAX_MEMBERS. */
export function projectMembers(ctx: Pick<QueryCtx, "db">, projectId: Id<"projects">): Promise<Doc<"projectMembers">[]> {
  return ctx.db
    .query("projectMembers")
    .withIndex("by_projectId_and_userId", (q) => q.eq("projectId", projectId))
    .take(MAX_MEMBERS);
}

const ROLE_RANK: Record<MemberRole, number> = { member: 0, admin: 1, owner: 2 };

/** Whether `role` is at least `minimum` (owner > admin > member). */
export function roleAtLeast(role: MemberRole, minimum: MemberRole): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[minimum];
}

/** A project and a user's membership of it. */
export interface ProjectRole {
  project: Doc<"projects">;
  membership: Doc<"projectMembers">;
}

/** Why findProjectRole found no role good enough. */
export type ProjectRoleRefusal = "NO_PROJECT" | "NOT_A_MEMBER" | "ROLE_TOO_LOW";

/**
 * The project and `userId`'s membership of it when it has at least
 * `minimumRole`, else why not. Reads the project and one membership.
 */
export async function checkProjectRole(
  ctx: Pick<QueryCtx, "db">,
  userId: Id<"users"> | null,
  projectId: Id<"projects">,
  minimumRole: MemberRole,
): Promise<ProjectRole | { refused: ProjectRoleRefusal }> {
  const project = await ctx.db.get("projects", projectId);
  if (!project) return { refused: "NO_PROJECT" };
  const membership =
    userId === null
      ? null
      : await ctx.db
          .query("projectMembers")
          .withIndex("by_projectId_and_userId", (q) => q.eq("projectId", projectId).eq("userId", userId))
          .unique();
  if (!membership) return { refused: "NOT_A_MEMBER" };
  if (!roleAtLeast(membership.role, minimumRole)) return { refused: "ROLE_TOO_LOW" };
  return { project, membership };
}

/** The project and `userId`'s membership with at least `minimumRole`, or null (no project, not a member, too low a role). */
export async function findProjectRole(
  ctx: Pick<QueryCtx, "db">,
  userId: Id<"users"> | null,
  projectId: Id<"projects">,
  minimumRole: MemberRole,
): Promise<ProjectRole | null> {
  const found = await checkProjectRole(ctx, userId, projectId, minimumRole);
  return "refused" in found ? null : found;
}

/**
 * The caller's membership of a project with at least `minimumRole`.
 * NOT_FOUND when the project does not exist, FORBIDDEN when the caller is
 * not a member or has too low a role.
 */
export async function requireProjectRole(
  ctx: Pick<QueryCtx, "db">,
  userId: Id<"users"> | null,
  projectId: Id<"projects">,
  minimumRole: MemberRole,
): Promise<ProjectRole> {
  const found = await checkProjectRole(ctx, userId, projectId, minimumRole);
  if (!("refused" in found)) return found;
  switch (found.refused) {
    case "NO_PROJECT":
      throw appError("NOT_FOUND", "Project not found");
    case "NOT_A_MEMBER":
      throw appError("FORBIDDEN", "You are not a member of this project");
    case "ROLE_TOO_LOW":
      throw appError("FORBIDDEN", `This needs the ${minimumRole} role in the project`);
  }
}

/**
 * A row owned by a project (a connection, an API key) and the caller's
 * membership of its project with at least `minimumRole`: NOT_FOUND (with
 * `notFound` as the message) when the row is missing, then as
 * requireProjectRole.
 */
export async function requireRowRole<T extends "connections" | "apiKeys">(
  ctx: Pick<QueryCtx, "db">,
  userId: Id<"users"> | null,
  table: T,
  id: Id<T>,
  minimumRole: MemberRole,
): Promise<ProjectRole & { row: Doc<T> }> {
  const row = (await ctx.db.get(table, id)) as Doc<T> | null;
  if (!row) throw appError("NOT_FOUND", table === "connections" ? "Connection not found" : "API key not found");
  return { row, ...(await requireProjectRole(ctx, userId, row.projectId, minimumRole)) };
}
