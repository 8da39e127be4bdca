/**
 * Who is calling, and may they touch this project? Used by the custom
 * function builders in functions.ts; nothing here is a Convex function.
 */
import type { UserIdentity } from "convex/server";
import type { Doc, Id } from "./_generated/dataModel";
import type { MutationCtx, QueryCtx } from "./_generated/server";
import { appError } from "./errors";
import { normalizeEmail, sanitizeDisplayName } from "./input";
import type { MemberRole } from "./validators";

const ROLE_RANK: Record<MemberRole, number> = { member: 0, admin: 1, owner: 2 };

/** Whether `role` is at least `minimum` (owner > admin > member). */
export function roleAtLeast(role: MemberRole, minimum: MemberRole): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[minimum];
}

/** The caller's identity; UNAUTHENTICATED when there is none. */
export async function requireIdentity(ctx: { auth: QueryCtx["auth"] }): Promise<UserIdentity> {
  const identity = await ctx.auth.getUserIdentity();
  if (!identity) throw appError("UNAUTHENTICATED", "Sign in to use Dashtray");
  return identity;
}

/** The users row for an identity, or null before the user's first mutation. */
export async function findUser(ctx: QueryCtx, identity: UserIdentity): Promise<Doc<"users"> | null> {
  return ctx.db
    .query("users")
    .withIndex("by_tokenIdentifier", (q) => q.eq("tokenIdentifier", identity.tokenIdentifier))
    .unique();
}

/**
 * The profile a users row mirrors from the identity's claims: the name, and
 * the email (normalised) only when the identity provider verified it: an
 * unverified email could name anyone, and members see each other's email.
 */
function profileOf(identity: UserIdentity): { name?: string; email?: string } {
  const email = identity.emailVerified === true && identity.email !== undefined ? normalizeEmail(identity.email) : "";
  return {
    // Claims are not checked by anyone before they reach us: made safe like project names (input.ts).
    ...(sanitizeDisplayName(identity.name) !== undefined ? { name: sanitizeDisplayName(identity.name) } : {}),
    ...(email ? { email } : {}),
  };
}

/**
 * The users row for an identity, created on first use. When the identity's
 * name or verified email changed since, the row is updated (and only then, so
 * that ordinary mutations do not write it); a claim that is gone or no longer
 * verified is removed.
 */
export async function findOrCreateUser(ctx: MutationCtx, identity: UserIdentity): Promise<Doc<"users">> {
  const profile = profileOf(identity);
  const existing = await findUser(ctx, identity);
  if (existing && existing.name === profile.name && existing.email === profile.email) return existing;
  let userId: Id<"users">;
  if (existing) {
    // Patching a field with undefined removes it.
    await ctx.db.patch("users", existing._id, { name: profile.name, email: profile.email });
    userId = existing._id;
  } else {
    userId = await ctx.db.insert("users", { tokenIdentifier: identity.tokenIdentifier, ...profile, createdAt: Date.now() });
  }
  const user = await ctx.db.get("users", userId);
  if (!user) throw new Error("user row vanished right after it was written");
  return user;
}

/**
 * The caller's membership of a project with at least `minimumRole`.
 * NOT_FOUND when the project does not exist, FORBIDDEN when the caller is
 * not a member or has too low a role.
 */
export async function requireProjectRole(
  ctx: QueryCtx,
  userId: Id<"users"> | null,
  projectId: Id<"projects">,
  minimumRole: MemberRole,
): Promise<{ project: Doc<"projects">; membership: Doc<"projectMembers"> }> {
  const project = await ctx.db.get("projects", projectId);
  if (!project) throw appError("NOT_FOUND", "Project not found");
  const membership =
    userId === null
      ? null
      : await ctx.db
          .query("projectMembers")
          .withIndex("by_projectId_and_userId", (q) => q.eq("projectId", projectId).eq("userId", userId))
          .unique();
  if (!membership) throw appError("FORBIDDEN", "You are not a member of this project");
  if (!roleAtLeast(membership.role, minimumRole)) {
    throw appError("FORBIDDEN", `This needs the ${minimumRole} role in the project`);
  }
  return { project, membership };
}
