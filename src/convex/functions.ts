/**
 * Function builders for the public API. Every public function is built with
 * one of these, so authentication (and, for project builders, membership and
 * role) is checked before its handler runs.
 *
 * - userQuery / userMutation / userAction: the caller must be signed in.
 *   ctx.user is the caller's users row (null in queries and actions before
 *   the first mutation created it).
 * - projectQuery / projectMutation: also take `projectId` and require
 *   membership with at least `minimumRole` (default "member"), given next to
 *   `args` in the function definition; ctx.project and ctx.membership are set.
 * - connectionQuery / connectionMutation / apiKeyMutation: the same check for
 *   functions that take `connectionId` / `apiKeyId`, via the row's project.
 * - secretProjectMutation / secretConnectionMutation: the same checks for
 *   functions whose arguments carry a secret, which Convex must not validate
 *   (see secretArgs.ts).
 * - projectAction / connectionAction: the same check for actions, plus an
 *   optional `rateLimits` option (buckets to take a token from), all in one
 *   internal mutation (actionAccess.authorize) before the handler runs.
 *   ctx.userId, ctx.projectId, ctx.role (and ctx.connectionId) are set.
 */
import { customAction, customMutation, customQuery } from "convex-helpers/server/customFunctions";
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import type { Infer } from "convex/values";
import type { actionAccessValidator } from "./actionAccess";
import { action, mutation, query, type ActionCtx, type QueryCtx } from "./_generated/server";
import type { UserIdentity } from "convex/server";
import { findOrCreateUser, findUser, requireIdentity, requireProjectRole } from "./auth";
import { appError } from "./errors";
import type { RateLimitRule } from "./rateLimits";
import type { MemberRole } from "./validators";

/** Extra option of project builders: the least role the function needs. */
interface RoleOption {
  minimumRole?: MemberRole;
}

/** Extra options of action builders: the least role, and the rate-limit buckets each call takes a token from. */
interface ActionOptions extends RoleOption {
  rateLimits?: readonly RateLimitRule[];
}

type ActionAccess = Infer<typeof actionAccessValidator>;

// Explicit return type: inferring it would be circular through _generated/api.
async function findUserFromAction(ctx: ActionCtx, identity: UserIdentity): Promise<Doc<"users"> | null> {
  return ctx.runQuery(internal.users.getByTokenIdentifier, { tokenIdentifier: identity.tokenIdentifier });
}

export const userQuery = customQuery(query, {
  args: {},
  input: async (ctx) => {
    const identity = await requireIdentity(ctx);
    return { ctx: { identity, user: await findUser(ctx, identity) }, args: {} };
  },
});

export const userMutation = customMutation(mutation, {
  args: {},
  input: async (ctx) => {
    const identity = await requireIdentity(ctx);
    return { ctx: { identity, user: await findOrCreateUser(ctx, identity) }, args: {} };
  },
});

export const userAction = customAction(action, {
  args: {},
  input: async (ctx) => {
    const identity = await requireIdentity(ctx);
    return { ctx: { identity, user: await findUserFromAction(ctx, identity) }, args: {} };
  },
});

export const projectQuery = customQuery(query, {
  args: { projectId: v.id("projects") },
  input: async (ctx, { projectId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findUser(ctx, identity);
    const { project, membership } = await requireProjectRole(ctx, user?._id ?? null, projectId, minimumRole);
    return { ctx: { identity, user, project, membership }, args: { projectId } };
  },
});

export const projectMutation = customMutation(mutation, {
  args: { projectId: v.id("projects") },
  input: async (ctx, { projectId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findOrCreateUser(ctx, identity);
    const { project, membership } = await requireProjectRole(ctx, user._id, projectId, minimumRole);
    return { ctx: { identity, user, project, membership }, args: { projectId } };
  },
});

/**
 * Builders for functions that take the id of a row owned by a project
 * (`connectionId`, `apiKeyId`) instead of `projectId`: they load the row and
 * require membership of its project with at least `minimumRole`, exactly as
 * the project builders do. ctx.project and ctx.membership are set, and the
 * loaded row as ctx.connection / ctx.apiKey. A missing row is NOT_FOUND.
 */
async function requireConnection(
  ctx: QueryCtx,
  userId: Id<"users"> | null,
  connectionId: Id<"connections">,
  minimumRole: MemberRole,
) {
  const connection = await ctx.db.get("connections", connectionId);
  if (!connection) throw appError("NOT_FOUND", "Connection not found");
  return { connection, ...(await requireProjectRole(ctx, userId, connection.projectId, minimumRole)) };
}

export const connectionQuery = customQuery(query, {
  args: { connectionId: v.id("connections") },
  input: async (ctx, { connectionId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findUser(ctx, identity);
    const checked = await requireConnection(ctx, user?._id ?? null, connectionId, minimumRole);
    return { ctx: { identity, user, ...checked }, args: { connectionId } };
  },
});

export const connectionMutation = customMutation(mutation, {
  args: { connectionId: v.id("connections") },
  input: async (ctx, { connectionId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findOrCreateUser(ctx, identity);
    const checked = await requireConnection(ctx, user._id, connectionId, minimumRole);
    return { ctx: { identity, user, ...checked }, args: { connectionId } };
  },
});

export const apiKeyMutation = customMutation(mutation, {
  args: { apiKeyId: v.id("apiKeys") },
  input: async (ctx, { apiKeyId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findOrCreateUser(ctx, identity);
    const apiKey = await ctx.db.get("apiKeys", apiKeyId);
    if (!apiKey) throw appError("NOT_FOUND", "API key not found");
    const { project, membership } = await requireProjectRole(ctx, user._id, apiKey.projectId, minimumRole);
    return { ctx: { identity, user, apiKey, project, membership }, args: { apiKeyId } };
  },
});

/**
 * Builders for functions whose arguments carry a secret (secretArgs.ts):
 * they declare no `args` validator, so Convex never validates (nor quotes)
 * their arguments; the handler types its parameter and calls `checkArgs`.
 * These builders check the caller, normalize `projectId` / `connectionId`
 * from the unvalidated arguments against the database (INVALID_ARGUMENT
 * naming the field when it is not an id of that table) and require the role,
 * exactly as projectMutation / connectionMutation do; the handler reads the
 * checked row from ctx.project / ctx.connection. userMutation and userAction
 * need no variant: without `args` they pass the arguments through.
 */
function idArgument<T extends "projects" | "connections">(
  ctx: QueryCtx,
  table: T,
  args: Record<string, unknown>,
  field: string,
): Id<T> {
  const raw = args[field];
  const id = typeof raw === "string" ? ctx.db.normalizeId(table, raw) : null;
  if (id === null) throw appError("INVALID_ARGUMENT", `Argument "${field}" must be an id of table ${table}`, { field });
  return id;
}

export const secretProjectMutation = customMutation(mutation, {
  args: {},
  input: async (ctx, args: Record<string, unknown>, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findOrCreateUser(ctx, identity);
    const projectId = idArgument(ctx, "projects", args, "projectId");
    const { project, membership } = await requireProjectRole(ctx, user._id, projectId, minimumRole);
    return { ctx: { identity, user, project, membership }, args: {} };
  },
});

export const secretConnectionMutation = customMutation(mutation, {
  args: {},
  input: async (ctx, args: Record<string, unknown>, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findOrCreateUser(ctx, identity);
    const connectionId = idArgument(ctx, "connections", args, "connectionId");
    const checked = await requireConnection(ctx, user._id, connectionId, minimumRole);
    return { ctx: { identity, user, ...checked }, args: {} };
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
  const access: ActionAccess = await ctx.runMutation(internal.actionAccess.authorize, {
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
