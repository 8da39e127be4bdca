import { beforeEach, describe, expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { findOrCreateUser } from "../convex/access/identity";
import { errorOf, invite, projectWithEveryRole, userIdOf, type ProjectFixture } from "./helpers/api";
import { identity, newBackend, type Backend } from "./helpers/convex";

let t: Backend;

beforeEach(() => {
  t = newBackend();
});

describe("create and list", () => {
  test("the creator owns the project; list shows each of the caller's projects with their role", async () => {
    const alice = t.withIdentity(identity("alice"));
    const projectId = await alice.mutation(api.projects.create, { name: "  Acme  " });
    expect(await alice.query(api.projects.list, {})).toEqual([
      { projectId, name: "Acme", role: "owner", createdAt: expect.any(Number) },
    ]);
    const bob = t.withIdentity(identity("bob"));
    expect(await bob.query(api.projects.list, {})).toEqual([]);
  });

  test.each([[""], ["   "], ["p".repeat(101)]])("refuses the name %j with INVALID_ARGUMENT", async (name) => {
    const alice = t.withIdentity(identity("alice"));
    expect((await errorOf(alice.mutation(api.projects.create, { name }))).code).toBe("INVALID_ARGUMENT");
    expect(await t.run((ctx) => ctx.db.query("projects").collect())).toEqual([]);
  });
});

describe("members", () => {
  let project: ProjectFixture;

  beforeEach(async () => {
    project = await projectWithEveryRole(t);
  });

  test("members lists everyone with their role", async () => {
    const members = await project.member.query(api.projects.members, { projectId: project.projectId });
    expect(members.map((member) => [member.name, member.email, member.role])).toEqual([
      ["alice", "alice@example.test", "owner"],
      ["bob", "bob@example.test", "admin"],
      ["carol", "carol@example.test", "member"],
    ]);
  });

  test("an added member sees the project with their role", async () => {
    expect(await project.admin.query(api.projects.list, {})).toEqual([
      expect.objectContaining({ projectId: project.projectId, role: "admin" }),
    ]);
  });

  test("a removed owner's pending invitations are revoked with them; other owners' invitations stay", async () => {
    const dave = await invite(t, project.owner, project.projectId, "dave", "owner");
    const fromDave = await dave.mutation(api.invitations.create, { projectId: project.projectId, email: identity("eve").email, role: "owner" });
    const fromAlice = await project.owner.mutation(api.invitations.create, {
      projectId: project.projectId,
      email: identity("frank").email,
      role: "member",
    });
    await project.owner.mutation(api.projects.removeMember, { projectId: project.projectId, userId: await userIdOf(t, "dave") });
    const eve = t.withIdentity(identity("eve"));
    const refused = await errorOf(eve.mutation(api.invitations.accept, { invitationId: fromDave }));
    expect([refused.code, refused.message]).toEqual(["CONFLICT", "This invitation was revoked"]);
    expect(await eve.query(api.projects.list, {})).toEqual([]);
    const frank = t.withIdentity(identity("frank"));
    await frank.mutation(api.invitations.accept, { invitationId: fromAlice });
    expect(await frank.query(api.projects.list, {})).toEqual([expect.objectContaining({ role: "member" })]);
  });

  test("a removed member loses access at once", async () => {
    const carolId = await userIdOf(t, "carol");
    await project.owner.mutation(api.projects.removeMember, { projectId: project.projectId, userId: carolId });
    const error = await errorOf(project.member.query(api.connections.list, { projectId: project.projectId }));
    expect(error.code).toBe("FORBIDDEN");
    expect(await project.member.query(api.projects.list, {})).toEqual([]);
  });

  test("removing the last owner is CONFLICT; with a second owner it works", async () => {
    const aliceId = await userIdOf(t, "alice");
    const removeAlice = () =>
      project.owner.mutation(api.projects.removeMember, { projectId: project.projectId, userId: aliceId });
    expect((await errorOf(removeAlice())).code).toBe("CONFLICT");
    await invite(t, project.owner, project.projectId, "dave", "owner");
    await removeAlice();
    expect(await project.owner.query(api.projects.list, {})).toEqual([]);
  });

  test("removing a non-member is NOT_FOUND", async () => {
    const malloryId = await userIdOf(t, "mallory");
    const call = project.owner.mutation(api.projects.removeMember, { projectId: project.projectId, userId: malloryId });
    expect((await errorOf(call)).code).toBe("NOT_FOUND");
  });
});

test("emails are stored trimmed with ASCII letters lowercased, and nothing else folded", async () => {
  const dana = t.withIdentity({ ...identity("dana"), email: "  Dana.Smith@Example.TEST " });
  expect((await dana.mutation(api.users.store, {})).email).toBe("dana.smith@example.test");
  const kelvin = t.withIdentity({ ...identity("kelvin"), email: "\u212Aate@corp.example" });
  expect((await kelvin.mutation(api.users.store, {})).email).toBe("\u212Aate@corp.example");
});

test("an email the identity provider did not verify is not stored; one no longer verified is dropped", async () => {
  const impostor = t.withIdentity({ ...identity("eve"), email: "victim@example.test", emailVerified: false });
  const unsaid = t.withIdentity({ ...identity("frank"), email: "frank@example.test", emailVerified: undefined });
  expect((await impostor.mutation(api.users.store, {})).email).toBeUndefined();
  expect((await unsaid.mutation(api.users.store, {})).email).toBeUndefined();

  const base = identity("dana");
  const danaId = (await t.withIdentity(base).mutation(api.users.store, {})).userId;
  const renamed = t.withIdentity({ ...base, name: "Dana S.", email: "dana@new.example.test" });
  expect(await renamed.mutation(api.users.store, {})).toEqual({ userId: danaId, name: "Dana S.", email: "dana@new.example.test" });
  await t.withIdentity({ ...base, email: "dana@new.example.test", emailVerified: false }).mutation(api.aiKeys.remove, {});
  const stored = await t.run((ctx) => ctx.db.get("users", danaId));
  expect(stored).toMatchObject({ name: "dana" });
  expect(stored?.email).toBeUndefined();
});

test("findOrCreateUser writes the users row only when it is new or the identity's claims changed", async () => {
  const claims = { ...identity("dana"), tokenIdentifier: "https://auth.test|user|dana" };
  /** The db writes one findOrCreateUser call makes. */
  const writesOf = (userIdentity: typeof claims) =>
    t.run(async (ctx) => {
      const writes: string[] = [];
      const db = new Proxy(ctx.db, {
        get(target, property, receiver) {
          const value: unknown = Reflect.get(target, property, receiver);
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => {
            if (["insert", "patch", "replace", "delete"].includes(String(property))) writes.push(String(property));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      await findOrCreateUser({ ...ctx, db }, userIdentity);
      return writes;
    });
  expect(await writesOf(claims)).toEqual(["insert"]);
  expect(await writesOf(claims)).toEqual([]);
  expect(await writesOf({ ...claims, email: " DANA@example.test" })).toEqual([]);
  expect(await writesOf({ ...claims, name: "Dana S." })).toEqual(["patch"]);
  expect(await writesOf({ ...claims, name: "Dana S." })).toEqual([]);
});

describe("audit log", () => {
  test("members read who did what, newest first, page by page; entries never hold secrets", async () => {
    const project = await projectWithEveryRole(t);
    const secretKey = "sk_live_AuditLogTestKey000000000000";
    const connectionId = await project.admin.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "stripe",
      credentials: { secretKey },
    });
    const { apiKey } = await project.admin.mutation(api.apiKeys.create, { projectId: project.projectId, name: "CI" });

    const firstPage = await project.member.query(api.auditLog.list, {
      projectId: project.projectId,
      paginationOpts: { numItems: 2, cursor: null },
    });
    const secondPage = await project.member.query(api.auditLog.list, {
      projectId: project.projectId,
      paginationOpts: { numItems: 10, cursor: firstPage.continueCursor },
    });
    expect(firstPage.isDone).toBe(false);
    expect(secondPage.isDone).toBe(true);
    const entries = [...firstPage.page, ...secondPage.page];
    expect(entries.map((entry) => entry.action)).toEqual([
      "apiKey.created",
      "connection.created",
      "project.member_added",
      "invitation.accepted",
      "invitation.created",
      "project.member_added",
      "invitation.accepted",
      "invitation.created",
      "project.member_added",
    ]);
    expect(entries[1]).toMatchObject({ targetTable: "connections", targetId: connectionId, actorId: await userIdOf(t, "bob") });
    const text = JSON.stringify(entries);
    expect(text).not.toContain(secretKey);
    expect(text).not.toContain(apiKey);
  });

  test("another project's entries are not listed", async () => {
    const project = await projectWithEveryRole(t);
    const otherProjectId = await project.outsider.mutation(api.projects.create, { name: "Elsewhere" });
    await project.outsider.mutation(api.apiKeys.create, { projectId: otherProjectId, name: "x" });
    const page = await project.owner.query(api.auditLog.list, {
      projectId: project.projectId,
      paginationOpts: { numItems: 50, cursor: null },
    });
    expect(page.page.every((entry) => entry.action.startsWith("project.") || entry.action.startsWith("invitation."))).toBe(true);
    expect(page.page).toHaveLength(7);
  });
});

test("users.store creates the caller's row once and returns the provider's profile", async () => {
  const dana = t.withIdentity(identity("dana"));
  const first = await dana.mutation(api.users.store, {});
  const second = await dana.mutation(api.users.store, {});
  expect(second).toEqual(first);
  expect(first).toMatchObject({ name: "dana", email: "dana@example.test" });
  expect(await t.run((ctx) => ctx.db.query("users").collect())).toHaveLength(1);
});
