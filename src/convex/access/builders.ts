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
 *   (checkArgs, below).
 */
import { customMutation, customQuery } from "convex-helpers/server/customFunctions";
import { v, type GenericValidator, type ObjectType, type PropertyValidators } from "convex/values";
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
 * Builders for functions whose arguments carry a secret (checkArgs, below):
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

/*
 * Arguments that carry a secret (a credential, an API key, an OAuth
 * completion token), checked here instead of by Convex.
 *
 * When Convex's own argument validation refuses a call, its error quotes the
 * offending object whole ("Object contains extra field `x` that is not in
 * the validator. Object: {…}", "Value: …"; crates/common/src/schemas/
 * validator.rs in get-convex/convex-backend), so a malformed call would
 * write the secret into the deployment's logs, every log stream and the
 * error the client sees. Functions that take a secret therefore declare no
 * `args` validator at all (Convex then validates nothing: the arguments may
 * be any value), type their handler's parameter with `ObjectType` of the
 * same validators (so the dashboard's generated `api` keeps the precise
 * argument types), and call `checkArgs` first. Its errors are the project's
 * INVALID_ARGUMENT with the argument's name in `field`, and never contain a
 * value, nor the name of an argument that should not be there.
 *
 * It checks the validator kinds these functions use: string, literal, union
 * of those, optional, id (a string here; builders normalize ids against the
 * database), and record of strings (credentials).
 */
/** Most entries a record argument (credentials) may have; integrations take a handful. */
export const MAX_RECORD_ENTRIES = 32;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** INVALID_ARGUMENT naming `field` when given (an undeclared argument is not named). */
function refuse(field: string | undefined, message: string): never {
  throw appError("INVALID_ARGUMENT", message, field === undefined ? {} : { field });
}

/** Whether `value` passes `validator` (the kinds listed above; any other kind never passes). */
function matches(validator: GenericValidator, value: unknown): boolean {
  switch (validator.kind) {
    case "string":
    case "id":
      return typeof value === "string";
    case "literal":
      return value === validator.value;
    case "union":
      return (validator.members as GenericValidator[]).some((member) => matches(member, value));
    case "record":
      return (
        isPlainObject(value) &&
        Object.keys(value).length <= MAX_RECORD_ENTRIES &&
        Object.entries(value).every(([key, entry]) => matches(validator.key as GenericValidator, key) && matches(validator.value as GenericValidator, entry))
      );
    default:
      return false;
  }
}

/** What a validator expects, in words, for messages. */
function describe(validator: GenericValidator): string {
  switch (validator.kind) {
    case "string":
      return "a string";
    case "id":
      return `an id of table ${validator.tableName}`;
    case "literal":
      return JSON.stringify(validator.value);
    case "union":
      return `one of ${(validator.members as GenericValidator[]).map(describe).join(", ")}`;
    case "record":
      return `an object of at most ${MAX_RECORD_ENTRIES} string fields`;
    default:
      return validator.kind;
  }
}

/**
 * `raw` as the object `validators` describe, or INVALID_ARGUMENT naming the
 * first argument that is missing or of the wrong type. An argument that is
 * not declared is refused too, without naming it (a client could have put a
 * secret in a field name). Values are never quoted.
 */
export function checkArgs<V extends PropertyValidators>(raw: unknown, validators: V): ObjectType<V> {
  const names = Object.keys(validators);
  if (!isPlainObject(raw)) refuse(undefined, `Expected an object with the arguments ${names.join(", ")}`);
  if (Object.keys(raw).some((name) => !Object.hasOwn(validators, name) && raw[name] !== undefined)) {
    refuse(undefined, `Unexpected argument: this function takes only ${names.join(", ")}`);
  }
  for (const [name, validator] of Object.entries(validators) as [string, GenericValidator][]) {
    const value = raw[name];
    if (value === undefined) {
      if (validator.isOptional === "optional") continue;
      refuse(name, `Missing argument "${name}"`);
    }
    if (!matches(validator, value)) refuse(name, `Argument "${name}" must be ${describe(validator)}`);
  }
  return raw as ObjectType<V>;
}
