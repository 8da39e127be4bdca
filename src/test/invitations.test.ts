// Members join a project only by accepting an invitation while signed in
// with the invited address, verified by their identity provider. Addresses
// are compared exactly after trimming and lowercasing ASCII letters, so a
// look-alike address (KELVIN SIGN for K) can never take someone's place.
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { api } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { INVITATION_TTL_MS } from "../convex/invitations";
import { normalizeEmail } from "../convex/access/input";
import { errorOf, everythingStored, invite, projectWithEveryRole, userIdOf, type ProjectFixture } from "./helpers/api";
import { identity, newBackend, type Backend } from "./helpers/convex";

let t: Backend;
let project: ProjectFixture;

beforeEach(async () => {
  t = newBackend();
  project = await projectWithEveryRole(t);
});

afterEach(() => {
  vi.useRealTimers();
});

function inviteEmail(email: string, role: "owner" | "admin" | "member" = "member") {
  return project.owner.mutation(api.invitations.create, { projectId: project.projectId, email, role });
}

function roleOf(name: string) {
  return t.run(async (ctx) => {
    const userId = (await ctx.db.query("users").collect()).find((user) => user.name === name)?._id;
    const memberships = await ctx.db.query("projectMembers").collect();
    return memberships.find((membership) => membership.userId === userId && membership.projectId === project.projectId)?.role ?? null;
  });
}

describe("look-alike emails", () => {
  const kate = { ...identity("kate"), email: "kate@corp.example" };
  const kelvinKate = { ...identity("kelvin"), email: "\u212Aate@corp.example" };

  test("normalising an email folds ASCII case only: KELVIN SIGN is not K", () => {
    expect(normalizeEmail("  Kate@Corp.Example ")).toBe("kate@corp.example");
    expect(normalizeEmail("\u212Aate@corp.example")).not.toBe("kate@corp.example");
  });

  test("an invitation of kate@corp.example cannot be seen or accepted by a verified \\u212Aate@corp.example", async () => {
    const impostor = t.withIdentity(kelvinKate);
    await impostor.mutation(api.users.store, {});
    const invitationId = await inviteEmail("kate@corp.example", "admin");

    expect(await impostor.query(api.invitations.listMine, {})).toEqual([]);
    expect((await errorOf(impostor.mutation(api.invitations.accept, { invitationId }))).code).toBe("NOT_FOUND");
    expect(await roleOf("kelvin")).toBeNull();

    // The owner of the real address accepts it.
    const real = t.withIdentity(kate);
    expect((await real.query(api.invitations.listMine, {})).map((invitation) => invitation.invitationId)).toEqual([invitationId]);
    expect(await real.mutation(api.invitations.accept, { invitationId })).toBe(project.projectId);
    expect(await roleOf("kate")).toBe("admin");
  });

  test.each([
    ["KELVIN SIGN", "\u212Aate@corp.example"],
    ["a Cyrillic a", "k\u0430te@corp.example"],
    ["fullwidth letters", "\uFF4Bate@corp.example"],
    ["a zero-width space", "ka\u200Bte@corp.example"],
  ])("inviting an address with %s is INVALID_ARGUMENT", async (_case, email) => {
    expect((await errorOf(inviteEmail(email))).code).toBe("INVALID_ARGUMENT");
  });

  test.each([[""], ["  "], ["kate"], ["kate@corp"], ["a@b@corp.example"], ["kate smith@corp.example"]])(
    "inviting %j is INVALID_ARGUMENT",
    async (email) => {
      expect((await errorOf(inviteEmail(email))).code).toBe("INVALID_ARGUMENT");
    },
  );

  test("ASCII case and surrounding spaces do not matter", async () => {
    const invitationId = await inviteEmail("  Kate@CORP.example ");
    await t.withIdentity({ ...kate, email: "KATE@corp.EXAMPLE" }).mutation(api.invitations.accept, { invitationId });
    expect(await roleOf("kate")).toBe("member");
  });
});

test("inviting says nothing about whether an address has an account", async () => {
  await t.withIdentity({ ...identity("kate"), email: "kate@corp.example" }).mutation(api.users.store, {});
  const known = await inviteEmail("kate@corp.example");
  const unknown = await inviteEmail("nobody@corp.example");
  const listed = await project.admin.query(api.invitations.list, { projectId: project.projectId });
  const shapes = listed.map(({ invitationId: _id, email: _email, createdAt: _c, expiresAt: _e, ...rest }) => rest);
  expect(shapes[0]).toEqual(shapes[1]);
  expect(listed.map((invitation) => invitation.invitationId).sort()).toEqual([known, unknown].sort());
});

test("an invitee whose provider did not verify the address can neither see nor accept it", async () => {
  const invitationId = await inviteEmail("dave@example.test");
  const unverified = t.withIdentity({ ...identity("dave"), emailVerified: false });
  expect(await unverified.query(api.invitations.listMine, {})).toEqual([]);
  expect((await errorOf(unverified.mutation(api.invitations.accept, { invitationId }))).code).toBe("FORBIDDEN");
  expect(await roleOf("dave")).toBeNull();
});

test("the invitee sees the project, role and inviter; owners and admins see the pending invitations", async () => {
  const invitationId = await inviteEmail("dave@example.test", "admin");
  const dave = t.withIdentity(identity("dave"));
  expect(await dave.query(api.invitations.listMine, {})).toEqual([
    {
      invitationId,
      projectId: project.projectId,
      projectName: "Acme",
      role: "admin",
      invitedByName: "alice",
      createdAt: expect.any(Number),
      expiresAt: expect.any(Number),
    },
  ]);
  for (const caller of [project.owner, project.admin]) {
    expect(await caller.query(api.invitations.list, { projectId: project.projectId })).toEqual([
      {
        invitationId,
        email: "dave@example.test",
        role: "admin",
        invitedBy: await userIdOf(t, "alice"),
        createdAt: expect.any(Number),
        expiresAt: expect.any(Number),
      },
    ]);
  }
  await dave.mutation(api.invitations.accept, { invitationId });
  expect(await project.owner.query(api.invitations.list, { projectId: project.projectId })).toEqual([]);
  expect(await dave.query(api.invitations.listMine, {})).toEqual([]);
});

test("an invitation is single use", async () => {
  const invitationId = await inviteEmail("dave@example.test");
  const dave = t.withIdentity(identity("dave"));
  await dave.mutation(api.invitations.accept, { invitationId });
  expect((await errorOf(dave.mutation(api.invitations.accept, { invitationId }))).code).toBe("CONFLICT");
  // Another account verified with the same address cannot reuse it either.
  const twin = t.withIdentity({ ...identity("dave2"), email: identity("dave").email });
  expect((await errorOf(twin.mutation(api.invitations.accept, { invitationId }))).code).toBe("CONFLICT");
  expect(await roleOf("dave2")).toBeNull();
});

test(`an invitation expires after ${INVITATION_TTL_MS / 86_400_000} days`, async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
  const invitationId = await inviteEmail("dave@example.test");
  const [listed] = await project.owner.query(api.invitations.list, { projectId: project.projectId });
  expect(listed?.expiresAt).toBe(Date.now() + INVITATION_TTL_MS);
  vi.setSystemTime(Date.now() + INVITATION_TTL_MS);
  const error = await errorOf(t.withIdentity(identity("dave")).mutation(api.invitations.accept, { invitationId }));
  expect(error).toEqual({ code: "CONFLICT", message: "This invitation has expired: ask for a new one" });
  expect(await roleOf("dave")).toBeNull();
  // An expired invitation does not block a new one.
  await inviteEmail("dave@example.test");
});

test("owners revoke invitations; a revoked one cannot be accepted; a pending one blocks a duplicate", async () => {
  const invitationId = await inviteEmail("dave@example.test");
  expect((await errorOf(inviteEmail("DAVE@example.test"))).code).toBe("CONFLICT");
  await project.owner.mutation(api.invitations.revoke, { invitationId });
  await project.owner.mutation(api.invitations.revoke, { invitationId });
  expect(await project.owner.query(api.invitations.list, { projectId: project.projectId })).toEqual([]);
  const dave = t.withIdentity(identity("dave"));
  expect(await dave.query(api.invitations.listMine, {})).toEqual([]);
  expect((await errorOf(dave.mutation(api.invitations.accept, { invitationId }))).code).toBe("CONFLICT");
  expect(await roleOf("dave")).toBeNull();
  await inviteEmail("dave@example.test");
});

test("an accepted invitation cannot be revoked; removing the member is the way out", async () => {
  const dave = await invite(t, project.owner, project.projectId, "dave", "member");
  const [invitation] = await t.run((ctx) => ctx.db.query("invitations").collect());
  const invitationId = invitation!._id as Id<"invitations">;
  expect((await errorOf(project.owner.mutation(api.invitations.revoke, { invitationId }))).code).toBe("CONFLICT");
  await project.owner.mutation(api.projects.removeMember, { projectId: project.projectId, userId: await userIdOf(t, "dave") });
  expect((await errorOf(dave.query(api.connections.list, { projectId: project.projectId }))).code).toBe("FORBIDDEN");
});

test("a member accepting another invitation to the same project is CONFLICT and keeps their role", async () => {
  const invitationId = await inviteEmail(identity("carol").email, "owner");
  expect((await errorOf(project.member.mutation(api.invitations.accept, { invitationId }))).code).toBe("CONFLICT");
  expect(await roleOf("carol")).toBe("member");
});

test("invitations are audited (invited, accepted, revoked) with the role and never the address", async () => {
  const accepted = await inviteEmail("dave@example.test", "admin");
  await t.withIdentity(identity("dave")).mutation(api.invitations.accept, { invitationId: accepted });
  const revoked = await inviteEmail("erin@example.test");
  await project.owner.mutation(api.invitations.revoke, { invitationId: revoked });
  const entries = await t.run((ctx) => ctx.db.query("auditLog").collect());
  const aliceId = await userIdOf(t, "alice");
  const daveId = await userIdOf(t, "dave");
  const about = (id: string) =>
    entries.filter((entry) => entry.targetId === id).map((entry) => [entry.action, entry.actorId, entry.projectId, entry.detail]);
  expect(about(accepted)).toEqual([
    ["invitation.created", aliceId, project.projectId, "role: admin"],
    ["invitation.accepted", daveId, project.projectId, "role: admin"],
  ]);
  expect(about(revoked)).toEqual([
    ["invitation.created", aliceId, project.projectId, "role: member"],
    ["invitation.revoked", aliceId, project.projectId, "role: member"],
  ]);
  expect(about(daveId).map(([action]) => action)).toEqual(["project.member_added"]);
  expect(JSON.stringify(entries)).not.toContain("erin@");
  expect(await everythingStored(t)).toContain("erin@example.test");
});
