/** Shared fixtures for the public API tests: signed-in users, a project with every role, error codes, stored data. */
import { ConvexError } from "convex/values";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import schema from "../../convex/schema";
import type { MemberRole } from "../../convex/validators";
import { identity, type Backend } from "./convex";

export type Caller = ReturnType<Backend["withIdentity"]>;

/** The `{ code, message }` of the ConvexError a call fails with; throws if it succeeds or fails otherwise. */
export async function errorOf(call: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ConvexError) return error.data as { code: string; message: string };
    throw error;
  }
  throw new Error("expected the call to fail with a ConvexError");
}

/** A caller whose users row exists, as the dashboard's users.store call after sign-in makes it. */
export async function signIn(t: Backend, name: string): Promise<Caller> {
  const caller = t.withIdentity(identity(name));
  await caller.mutation(api.users.store, {});
  return caller;
}

/** The users row id of a signed-in caller's identity. */
export async function userIdOf(t: Backend, name: string): Promise<Id<"users">> {
  const members = await t.run((ctx) => ctx.db.query("users").collect());
  const user = members.find((member) => member.email === identity(name).email);
  if (!user) throw new Error(`${name} has not signed in`);
  return user._id;
}

export interface ProjectFixture {
  projectId: Id<"projects">;
  owner: Caller;
  admin: Caller;
  member: Caller;
  /** Signed in, but not a member of the project. */
  outsider: Caller;
}

/** Adds `name` to the project as the app does: `owner` invites their email, they accept signed in with it. */
export async function invite(
  t: Backend,
  owner: Caller,
  projectId: Id<"projects">,
  name: string,
  role: MemberRole,
): Promise<Caller> {
  const invitationId = await owner.mutation(api.invitations.create, { projectId, email: identity(name).email, role });
  const invitee = t.withIdentity(identity(name));
  await invitee.mutation(api.invitations.accept, { invitationId });
  return invitee;
}

/** A project owned by alice, with bob as admin, carol as member; mallory is signed in but no member. */
export async function projectWithEveryRole(t: Backend): Promise<ProjectFixture> {
  const owner = t.withIdentity(identity("alice"));
  const projectId = await owner.mutation(api.projects.create, { name: "Acme" });
  const admin = await signIn(t, "bob");
  const member = await signIn(t, "carol");
  const outsider = await signIn(t, "mallory");
  await invite(t, owner, projectId, "bob", "admin");
  await invite(t, owner, projectId, "carol", "member");
  return { projectId, owner, admin, member, outsider };
}

/** Every stored document of every table, plus scheduled function calls, as one JSON string. */
export async function everythingStored(t: Backend): Promise<string> {
  return t.run(async (ctx) => {
    const documents: unknown[] = [];
    for (const table of Object.keys(schema.tables) as (keyof typeof schema.tables)[]) {
      documents.push(...(await ctx.db.query(table).collect()));
    }
    documents.push(...(await ctx.db.system.query("_scheduled_functions").collect()));
    return JSON.stringify(documents);
  });
}
