/**
 * Who is calling: the caller's identity and their users row. The one
 * lookup of a users row by token identifier is here (findUserByToken);
 * the builders (builders.ts, actionBuilders.ts) and the internal functions
 * that get a token identifier from an action use it. Nothing here is a
 * Convex function.
 */
import type { UserIdentity } from "convex/server";
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { appError } from "../errors";
import { normalizeEmail, sanitizeDisplayName } from "./input";

/** The caller's identity; UNAUTHENTICATED when there is none. */
export async function requireIdentity(ctx: { auth: QueryCtx["auth"] }): Promise<UserIdentity> {
  const identity = await ctx.auth.getUserIdentity();
  if (!identity) throw appError("UNAUTHENTICATED", "Sign in to use Dashtray");
  return identity;
}

/** The users row of a token identifier, or null before that user's first mutation. */
export async function findUserByToken(ctx: Pick<QueryCtx, "db">, tokenIdentifier: string): Promise<Doc<"users"> | null> {
  return ctx.db
    .query("users")
    .withIndex("by_tokenIdentifier", (q) => q.eq("tokenIdentifier", tokenIdentifier))
    .unique();
}

/** The users row for an identity, or null before the user's first mutation. */
export async function findUser(ctx: Pick<QueryCtx, "db">, identity: UserIdentity): Promise<Doc<"users"> | null> {
  return findUserByToken(ctx, identity.tokenIdentifier);
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
