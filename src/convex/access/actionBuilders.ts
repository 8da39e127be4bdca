/**
 * Builders of the public actions. Actions have no database, so the whole
 * check of a project or connection action (caller, role, rate-limit tokens)
 * runs in one internal mutation, actionAccess.authorize, before the handler.
 *
 * - userAction: the caller must be signed in; ctx.user is their users row
 *   (null before their first mutation created it).
 * - projectAction / connectionAction: also take `projectId` / `connectionId`
 *   and require membership with at least `minimumRole` (default "member");
 *   the optional `rateLimits` option names the buckets each call takes a
 *   token from (access/rateLimits.ts). ctx.userId, ctx.projectId, ctx.role (and
 *   ctx.connectionId) are set.
 */
import { customAction } from "convex-helpers/server/customFunctions";
import type { UserIdentity } from "convex/server";
import { v, type Infer } from "convex/values";
import { internal } from "../_generated/api";
import type { Doc, Id } from "../_generated/dataModel";
import { action, type ActionCtx } from "../_generated/server";
import type { actionAccessValidator } from "./actionAccess";
import type { RoleOption } from "./builders";
import { requireIdentity } from "./identity";
import type { RateLimitRule } from "./rateLimits";

/** Extra options of action builders: the least role, and the rate-limit buckets each call takes a token from. */
interface ActionOptions extends RoleOption {
  rateLimits?: readonly RateLimitRule[];
}

type ActionAccess = Infer<typeof actionAccessValidator>;

// Explicit return type: inferring it would be circular through _generated/api.
async function findUserFromAction(ctx: ActionCtx, identity: UserIdentity): Promise<Doc<"users"> | null> {
  return ctx.runQuery(internal.users.getByTokenIdentifier, { tokenIdentifier: identity.tokenIdentifier });
}

export const userAction = customAction(action, {
  args: {},
  input: async (ctx) => {
    const identity = await requireIdentity(ctx);
    return { ctx: { identity, user: await findUserFromAction(ctx, identity) }, args: {} };
  },
});

/** The caller's identity and the result of actionAccess.authorize for `target`. */
async function authorizeAction(
  ctx: ActionCtx,
  target: { projectId: Id<"projects"> } | { connectionId: Id<"connections"> },
  { minimumRole = "member", rateLimits = [] }: ActionOptions,
): Promise<{ identity: UserIdentity } & ActionAccess> {
  const identity = await requireIdentity(ctx);
  // Explicit type: inferring it would be circular through _generated/api.
  const access: ActionAccess = await ctx.runMutation(internal.access.actionAccess.authorize, {
    tokenIdentifier: identity.tokenIdentifier,
    target,
    minimumRole,
    rateLimits: [...rateLimits],
  });
  return { identity, ...access };
}

export const projectAction = customAction(action, {
  args: { projectId: v.id("projects") },
  input: async (ctx, { projectId }, options: ActionOptions) => {
    const access = await authorizeAction(ctx, { projectId }, options);
    return { ctx: access, args: { projectId } };
  },
});

export const connectionAction = customAction(action, {
  args: { connectionId: v.id("connections") },
  input: async (ctx, { connectionId }, options: ActionOptions) => {
    const access = await authorizeAction(ctx, { connectionId }, options);
    return { ctx: { ...access, connectionId }, args: { connectionId } };
  },
});
