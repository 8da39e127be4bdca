/**
 * Invitations: the only way into a project besides creating it. An owner
 * invites an email address with a role; the invitee accepts while signed in
 * with that address, verified by their identity provider. Nothing here
 * looks users up by email, so no answer says whether an address has a
 * Dashtray account, and an owner can never add an account directly.
 *
 * Emails are compared exactly in their normalised form (access/input.ts
 * normalizeEmail: trimmed, ASCII letters lowercased, nothing else folded),
 * and only printable-ASCII addresses can be invited, so look-alikes such as
 * "\u212Aate@corp.example" (KELVIN SIGN) never match "kate@corp.example".
 */
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { MutationCtx, QueryCtx } from "./_generated/server";
import type { UserIdentity } from "convex/server";
import { MAX_MEMBERS, projectMembers, requireProjectRole } from "./access/roles";
import { recordAudit, recordUserAct } from "./audit/trail";
import { appError } from "./errors";
import { projectMutation, projectQuery, userMutation, userQuery } from "./access/builders";
import { cleanInviteEmail, normalizeEmail } from "./access/input";
import { invitationSummaryValidator, memberRoleValidator, myInvitationValidator } from "./validators";

/** How long an invitation can be accepted. */
export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** Most pending invitations a project (or an invitee's list) holds; keeps reads bounded. */
export const MAX_PENDING_INVITATIONS = 100;

/** Pending invitations of a project, newest first (expired ones included), bounded. */
function pendingOfProject(ctx: QueryCtx, projectId: Id<"projects">) {
  return ctx.db
    .query("invitations")
    .withIndex("by_projectId_and_state", (q) => q.eq("projectId", projectId).eq("state", "pending"))
    .order("desc")
    .take(MAX_PENDING_INVITATIONS);
}

/** The caller's verified email, normalised, or null when their provider did not verify one. */
function verifiedEmail(identity: UserIdentity): string | null {
  if (identity.emailVerified !== true || identity.email === undefined) return null;
  return normalizeEmail(identity.email) || null;
}

/**
 * Invites `email` to the project with `role` (owners only, as only owners
 * could add members). Returns the invitation's id; the invitee sees it in
 * invitations.listMine once signed in with that address. The answer is the
 * same whether or not the address has an account. CONFLICT when the address
 * already has a pending, unexpired invitation to the project, or the project
 * has MAX_PENDING_INVITATIONS of them.
 */
export const create = projectMutation({
  args: { email: v.string(), role: memberRoleValidator },
  minimumRole: "owner",
  returns: v.id("invitations"),
  handler: async (ctx, args) => {
    const email = cleanInviteEmail(args.email);
    const now = Date.now();
    const live = (await pendingOfProject(ctx, args.projectId)).filter((invitation) => invitation.expiresAt > now);
    if (live.some((invitation) => invitation.email === email)) {
      throw appError("CONFLICT", "This address already has a pending invitation: revoke it first to change it");
    }
    if (live.length >= MAX_PENDING_INVITATIONS) {
      throw appError("CONFLICT", `A project can have at most ${MAX_PENDING_INVITATIONS} pending invitations`);
    }
    const invitationId = await ctx.db.insert("invitations", {
      projectId: args.projectId,
      email,
      role: args.role,
      state: "pending",
      invitedBy: ctx.user._id,
      createdAt: now,
      expiresAt: now + INVITATION_TTL_MS,
    });
    await recordUserAct(ctx, "invitation.created", args.projectId, "invitations", invitationId, `role: ${args.role}`);
    return invitationId;
  },
});

/**
 * The project's pending invitations (owners and admins), newest first, with
 * their expiry: one past `expiresAt` can no longer be accepted.
 */
export const list = projectQuery({
  args: {},
  minimumRole: "admin",
  returns: v.array(invitationSummaryValidator),
  handler: async (ctx, { projectId }) => {
    return (await pendingOfProject(ctx, projectId)).map((invitation) => ({
      invitationId: invitation._id,
      email: invitation.email,
      role: invitation.role,
      invitedBy: invitation.invitedBy,
      createdAt: invitation.createdAt,
      expiresAt: invitation.expiresAt,
    }));
  },
});

/**
 * The pending, unexpired invitations addressed to the caller's verified
 * email, newest first. Empty when the caller's identity provider did not
 * verify their email. (Reactive subscribers see an invitation drop out when
 * anything in the list changes, or on the next load, after it expired.)
 */
export const listMine = userQuery({
  args: {},
  returns: v.array(myInvitationValidator),
  handler: async (ctx) => {
    const email = verifiedEmail(ctx.identity);
    if (!email) return [];
    const invitations = await ctx.db
      .query("invitations")
      .withIndex("by_email_and_state", (q) => q.eq("email", email).eq("state", "pending"))
      .order("desc")
      .take(MAX_PENDING_INVITATIONS);
    const now = Date.now();
    const listed = await Promise.all(
      invitations.map(async (invitation) => {
        if (invitation.expiresAt <= now) return null;
        const project = await ctx.db.get("projects", invitation.projectId);
        if (!project) return null;
        const inviter = await ctx.db.get("users", invitation.invitedBy);
        return {
          invitationId: invitation._id,
          projectId: project._id,
          projectName: project.name,
          role: invitation.role,
          invitedByName: inviter?.name,
          createdAt: invitation.createdAt,
          expiresAt: invitation.expiresAt,
        };
      }),
    );
    return listed.filter((invitation) => invitation !== null);
  },
});

/** The invitation if it is addressed to the caller's verified email; NOT_FOUND otherwise (nothing said about others' invitations). */
async function invitationForCaller(
  ctx: MutationCtx,
  identity: UserIdentity,
  invitationId: Id<"invitations">,
): Promise<Doc<"invitations">> {
  const email = verifiedEmail(identity);
  if (!email) throw appError("FORBIDDEN", "Sign in with an email address your identity provider has verified");
  const invitation = await ctx.db.get("invitations", invitationId);
  if (!invitation || invitation.email !== email) throw appError("NOT_FOUND", "No such invitation for your email address");
  return invitation;
}

/**
 * Accepts an invitation addressed to the caller: they become a member of its
 * project with its role, and the invitation is used up. FORBIDDEN without a
 * verified email; NOT_FOUND when the invitation is not addressed to the
 * caller's verified email (compared exactly, see the module comment);
 * CONFLICT when it was already accepted, revoked or has expired, when the
 * caller is already a member, or the project is full. Returns the project id.
 */
export const accept = userMutation({
  args: { invitationId: v.id("invitations") },
  returns: v.id("projects"),
  handler: async (ctx, { invitationId }) => {
    const invitation = await invitationForCaller(ctx, ctx.identity, invitationId);
    if (invitation.state === "accepted") throw appError("CONFLICT", "This invitation has already been used");
    if (invitation.state === "revoked") throw appError("CONFLICT", "This invitation was revoked");
    const now = Date.now();
    if (invitation.expiresAt <= now) throw appError("CONFLICT", "This invitation has expired: ask for a new one");
    const project = await ctx.db.get("projects", invitation.projectId);
    if (!project) throw appError("NOT_FOUND", "Project not found");
    const members = await projectMembers(ctx, project._id);
    if (members.some((member) => member.userId === ctx.user._id)) {
      throw appError("CONFLICT", "You are already a member of this project");
    }
    if (members.length >= MAX_MEMBERS) throw appError("CONFLICT", `A project can have at most ${MAX_MEMBERS} members`);
    await ctx.db.insert("projectMembers", { projectId: project._id, userId: ctx.user._id, role: invitation.role, createdAt: now });
    await ctx.db.patch("invitations", invitation._id, { state: "accepted", closedAt: now, closedBy: ctx.user._id });
    const entry = { actorId: ctx.user._id, projectId: project._id };
    await recordAudit(ctx, {
      ...entry,
      action: "invitation.accepted",
      targetTable: "invitations",
      targetId: invitation._id,
      detail: `role: ${invitation.role}`,
    });
    await recordAudit(ctx, {
      ...entry,
      action: "project.member_added",
      targetTable: "users",
      targetId: ctx.user._id,
      detail: `role: ${invitation.role} (accepted an invitation)`,
    });
    return project._id;
  },
});

/** Marks a pending invitation revoked by `closedBy` and audits it (`note` appended to the detail). */
async function closeInvitation(ctx: MutationCtx, invitation: Doc<"invitations">, closedBy: Id<"users">, note: string): Promise<void> {
  await ctx.db.patch("invitations", invitation._id, { state: "revoked", closedAt: Date.now(), closedBy });
  await recordAudit(ctx, {
    action: "invitation.revoked",
    actorId: closedBy,
    projectId: invitation.projectId,
    targetTable: "invitations",
    targetId: invitation._id,
    detail: `role: ${invitation.role}${note}`,
  });
}

/**
 * Declines a pending invitation addressed to the caller: it can no longer be
 * accepted and leaves their list (state "revoked", closed by the invitee,
 * audited as declined). Declining again, or a revoked one, does nothing;
 * FORBIDDEN without a verified email; NOT_FOUND when it is not addressed to
 * the caller; CONFLICT for an accepted one.
 */
export const decline = userMutation({
  args: { invitationId: v.id("invitations") },
  returns: v.null(),
  handler: async (ctx, { invitationId }) => {
    const invitation = await invitationForCaller(ctx, ctx.identity, invitationId);
    if (invitation.state === "revoked") return null;
    if (invitation.state === "accepted") throw appError("CONFLICT", "This invitation was accepted: leave the project instead");
    await closeInvitation(ctx, invitation, ctx.user._id, "; declined by the invitee");
    return null;
  },
});

/**
 * Revokes a pending invitation (owners of its project): it can no longer be
 * accepted. Revoking again does nothing; CONFLICT for an accepted one (remove
 * the member instead).
 */
export const revoke = userMutation({
  args: { invitationId: v.id("invitations") },
  returns: v.null(),
  handler: async (ctx, { invitationId }) => {
    const invitation = await ctx.db.get("invitations", invitationId);
    if (!invitation) throw appError("NOT_FOUND", "Invitation not found");
    await requireProjectRole(ctx, ctx.user._id, invitation.projectId, "owner");
    if (invitation.state === "revoked") return null;
    if (invitation.state === "accepted") {
      throw appError("CONFLICT", "This invitation was accepted: remove the member instead");
    }
    await closeInvitation(ctx, invitation, ctx.user._id, "");
    return null;
  },
});

/**
 * Revokes the project's pending invitations that the removed member created
 * (an invitation carries its inviter's authority, which ends with their
 * membership) and those addressed to the member's email (else an
 * invitation made before the removal would let them walk back in, with its
 * role), in the member removal's transaction. Audited per invitation, with
 * `actorId` as the one who revoked.
 */
export async function revokeInvitationsOfRemovedMember(
  ctx: MutationCtx,
  projectId: Id<"projects">,
  memberId: Id<"users">,
  actorId: Id<"users">,
): Promise<void> {
  const member = await ctx.db.get("users", memberId);
  const email = member?.email ? normalizeEmail(member.email) : null;
  const pending = await pendingOfProject(ctx, projectId);
  const concerned = pending.filter((candidate) => candidate.invitedBy === memberId || (email !== null && candidate.email === email));
  for (const invitation of concerned) {
    await ctx.db.patch("invitations", invitation._id, { state: "revoked", closedAt: Date.now(), closedBy: actorId });
    await recordAudit(ctx, {
      action: "invitation.revoked",
      actorId,
      projectId,
      targetTable: "invitations",
      targetId: invitation._id,
      detail: `role: ${invitation.role}; ${invitation.invitedBy === memberId ? "inviter" : "invitee"} removed from the project`,
    });
  }
}
