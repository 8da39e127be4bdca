/**
 * Builders of the public queries and mutations (actions: actionBuilders.ts).
 * Every public function is built with one of these, so authentication (and,
 * for project builders, membership and role) is checked before its handler
 * runs: the builder carries the policy, the handler only does its job.
 *
 * - userQuery / userMutation: the caller must be signed in. ctx.user is the
 *   caller's users row (null in queries before the first mutation created it).
 * - projectQuery / projectMutation: also take `projectId` and require
 *   membership with at least `minimumRole` (default "member"), given next to
 *   `args` in the function definition; ctx.project and ctx.membership are set.
 * - connectionQuery / connectionMutation / apiKeyMutation: the same check for
 *   functions that take `connectionId` / `apiKeyId`, via the row's project
 *   (roles.ts requireRowRole); the row is ctx.connection / ctx.apiKey, and a
 *   missing row is NOT_FOUND.
 * - secretProjectMutation / secretConnectionMutation: the same checks for
 *   functions whose arguments carry a secret, which Convex must not validate
 *   (see secretArgs.ts).
 */
import { customMutation, customQuery } from "convex-helpers/server/customFunctions";
import { v } from "convex/values";
import type { Id } from "../_generated/dataModel";
import { mutation, query, type QueryCtx } from "../_generated/server";
import { appError } from "../errors";
import type { MemberRole } from "../validators";
import { findOrCreateUser, findUser, requireIdentity } from "./identity";
import { requireProjectRole, requireRowRole } from "./roles";

/** Extra option of project builders: the least role the function needs. */
export interface RoleOption {
  minimumRole?: MemberRole;
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

export const connectionQuery = customQuery(query, {
  args: { connectionId: v.id("connections") },
  input: async (ctx, { connectionId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findUser(ctx, identity);
    const { row: connection, project, membership } = await requireRowRole(ctx, user?._id ?? null, "connections", connectionId, minimumRole);
    return { ctx: { identity, user, connection, project, membership }, args: { connectionId } };
  },
});

export const connectionMutation = customMutation(mutation, {
  args: { connectionId: v.id("connections") },
  input: async (ctx, { connectionId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findOrCreateUser(ctx, identity);
    const { row: connection, project, membership } = await requireRowRole(ctx, user._id, "connections", connectionId, minimumRole);
    return { ctx: { identity, user, connection, project, membership }, args: { connectionId } };
  },
});

export const apiKeyMutation = customMutation(mutation, {
  args: { apiKeyId: v.id("apiKeys") },
  input: async (ctx, { apiKeyId }, { minimumRole = "member" }: RoleOption) => {
    const identity = await requireIdentity(ctx);
    const user = await findOrCreateUser(ctx, identity);
    const { row: apiKey, project, membership } = await requireRowRole(ctx, user._id, "apiKeys", apiKeyId, minimumRole);
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
    const { row: connection, project, membership } = await requireRowRole(ctx, user._id, "connections", connectionId, minimumRole);
    return { ctx: { identity, user, connection, project, membership }, args: {} };
  },
});
