// Every public function refuses unauthenticated callers, project functions
// refuse non-members, and each refuses members below its required role.
// The last test fails when a public function is added without a row here.
import { beforeEach, describe, expect, test, vi } from "vitest";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import type { MemberRole } from "../../convex/validators";
import { errorOf, projectWithEveryRole, userIdOf, type Caller, type ProjectFixture } from "../helpers/api";
import { newBackend, type Backend } from "../helpers/convex";
import { SECRET_ARGUMENT_FUNCTIONS } from "../helpers/secretFunctions";

interface Fixture extends ProjectFixture {
  connectionId: Id<"connections">;
  apiKeyId: Id<"apiKeys">;
  /** A pending invitation of zed@example.test to the project. */
  invitationId: Id<"invitations">;
  memberUserId: Id<"users">;
}

type AnyCaller = Caller | Backend;

interface PublicFunction {
  /** "module:export", as Convex names it. */
  name: string;
  /** "user": any signed-in user (acts on their own data); otherwise the least project role. */
  access: "user" | MemberRole;
  call: (caller: AnyCaller, fixture: Fixture) => Promise<unknown>;
  /**
   * For actions that call a provider: the error an allowed caller gets here,
   * where providers are unreachable or the caller has no data yet.
   */
  allowedError?: string;
}

const STRIPE = { secretKey: "sk_live_access00000000000000004242" };

const PUBLIC_FUNCTIONS: PublicFunction[] = [
  { name: "users:store", access: "user", call: (c) => c.mutation(api.users.store, {}) },
  { name: "projects:create", access: "user", call: (c) => c.mutation(api.projects.create, { name: "P" }) },
  { name: "projects:list", access: "user", call: (c) => c.query(api.projects.list, {}) },
  { name: "projects:members", access: "member", call: (c, f) => c.query(api.projects.members, { projectId: f.projectId }) },
  {
    name: "invitations:create",
    access: "owner",
    call: (c, f) => c.mutation(api.invitations.create, { projectId: f.projectId, email: "newcomer@example.test", role: "member" }),
  },
  { name: "invitations:list", access: "admin", call: (c, f) => c.query(api.invitations.list, { projectId: f.projectId }) },
  { name: "invitations:listMine", access: "user", call: (c) => c.query(api.invitations.listMine, {}) },
  {
    name: "invitations:accept",
    access: "user",
    call: (c, f) => c.mutation(api.invitations.accept, { invitationId: f.invitationId }),
  },
  {
    name: "invitations:decline",
    access: "user",
    call: (c, f) => c.mutation(api.invitations.decline, { invitationId: f.invitationId }),
  },
  {
    name: "invitations:revoke",
    access: "owner",
    call: (c, f) => c.mutation(api.invitations.revoke, { invitationId: f.invitationId }),
  },
  {
    name: "projects:removeMember",
    access: "owner",
    call: (c, f) => c.mutation(api.projects.removeMember, { projectId: f.projectId, userId: f.memberUserId }),
  },
  {
    name: "connections:create",
    access: "admin",
    call: (c, f) => c.mutation(api.connections.create, { projectId: f.projectId, service: "stripe", credentials: STRIPE }),
  },
  { name: "connections:list", access: "member", call: (c, f) => c.query(api.connections.list, { projectId: f.projectId }) },
  { name: "connections:get", access: "member", call: (c, f) => c.query(api.connections.get, { connectionId: f.connectionId }) },
  {
    name: "connections:updateCredentials",
    access: "admin",
    call: (c, f) => c.mutation(api.connections.updateCredentials, { connectionId: f.connectionId, credentials: STRIPE }),
  },
  {
    name: "connections:syncMetrics",
    access: "member",
    call: (c, f) => c.action(api.connections.syncMetrics, { connectionId: f.connectionId }),
  },
  {
    name: "connections:startOAuth",
    access: "admin",
    call: (c, f) =>
      c.mutation(api.connections.startOAuth, { projectId: f.projectId, service: "google_analytics", settings: { propertyId: "123" } }),
  },
  {
    // Only the user who started the flow can finish it (oauth/start.test.ts); any signed-in caller may try.
    name: "connections:finishOAuth",
    access: "user",
    call: (c) => c.action(api.connections.finishOAuth, { flow: "A".repeat(43) }),
  },
  { name: "connections:remove", access: "admin", call: (c, f) => c.mutation(api.connections.remove, { connectionId: f.connectionId }) },
  {
    name: "aiKeys:set",
    access: "user",
    call: (c) => c.mutation(api.aiKeys.set, { provider: "openai", apiKey: "sk-access000000000000000000" }),
  },
  { name: "aiKeys:get", access: "user", call: (c) => c.query(api.aiKeys.get, {}) },
  { name: "aiKeys:remove", access: "user", call: (c) => c.mutation(api.aiKeys.remove, {}) },
  { name: "apiKeys:create", access: "admin", call: (c, f) => c.mutation(api.apiKeys.create, { projectId: f.projectId, name: "CI" }) },
  { name: "apiKeys:list", access: "member", call: (c, f) => c.query(api.apiKeys.list, { projectId: f.projectId }) },
  { name: "apiKeys:revoke", access: "admin", call: (c, f) => c.mutation(api.apiKeys.revoke, { apiKeyId: f.apiKeyId }) },
  {
    name: "ai:generateInsight",
    access: "member",
    call: (c, f) => c.action(api.ai.generateInsight, { projectId: f.projectId }),
    allowedError: "NOT_FOUND",
  },
  {
    name: "ai:verifyKey",
    access: "user",
    call: (c) => c.action(api.ai.verifyKey, { provider: "openai", apiKey: "sk-access000000000000000000" }),
  },
  {
    name: "auditLog:list",
    access: "member",
    call: (c, f) => c.query(api.auditLog.list, { projectId: f.projectId, paginationOpts: { numItems: 10, cursor: null } }),
  },
  { name: "users:me", access: "user", call: (c) => c.query(api.users.me, {}) },
  { name: "projects:rename", access: "admin", call: (c, f) => c.mutation(api.projects.rename, { projectId: f.projectId, name: "Renamed" }) },
  { name: "projects:remove", access: "owner", call: (c, f) => c.mutation(api.projects.remove, { projectId: f.projectId }) },
  { name: "connections:pause", access: "admin", call: (c, f) => c.mutation(api.connections.pause, { connectionId: f.connectionId }) },
  { name: "connections:resume", access: "admin", call: (c, f) => c.mutation(api.connections.resume, { connectionId: f.connectionId }) },
  { name: "metrics:latest", access: "member", call: (c, f) => c.query(api.metrics.latest, { projectId: f.projectId }) },
  {
    name: "metrics:series",
    access: "member",
    call: (c, f) => c.query(api.metrics.series, { connectionId: f.connectionId, name: "mrr.usd", from: 0, to: Date.now() }),
  },
  {
    name: "insights:list",
    access: "member",
    call: (c, f) => c.query(api.insights.list, { projectId: f.projectId, paginationOpts: { numItems: 10, cursor: null } }),
  },
  {
    name: "auditLog:listMine",
    access: "user",
    call: (c) => c.query(api.auditLog.listMine, { paginationOpts: { numItems: 10, cursor: null } }),
  },
];

/**
 * What an allowed caller's call did, checked for each function the "allows"
 * test calls (every function not callable by any signed-in user): its result
 * and the state it left. A function without an entry fails that test.
 */
type AllowedCheck = (result: unknown, fixture: Fixture, t: Backend) => void | Promise<void>;

/** Reads one document of the test backend. */
function stored<T extends "connections" | "invitations" | "apiKeys" | "projectMembers">(t: Backend, table: T, id: Id<T>) {
  return t.run((ctx) => ctx.db.get(table, id));
}

const ALLOWED: Record<string, AllowedCheck> = {
  "projects:members": (result) => {
    const members = result as Array<{ email?: string; role: string }>;
    expect(members.map((member) => `${member.email}:${member.role}`).sort()).toEqual([
      "alice@example.test:owner",
      "bob@example.test:admin",
      "carol@example.test:member",
    ]);
  },
  "invitations:create": async (result, f, t) => {
    expect(await stored(t, "invitations", result as Id<"invitations">)).toMatchObject({
      projectId: f.projectId,
      email: "newcomer@example.test",
      role: "member",
      state: "pending",
    });
  },
  "invitations:list": (result, f) => {
    expect(result).toEqual([expect.objectContaining({ invitationId: f.invitationId, email: "zed@example.test", role: "admin" })]);
  },
  "invitations:revoke": async (result, f, t) => {
    expect(result).toBeNull();
    expect((await stored(t, "invitations", f.invitationId))?.state).toBe("revoked");
  },
  "projects:removeMember": async (result, f, t) => {
    expect(result).toBeNull();
    const memberships = await t.run((ctx) =>
      ctx.db
        .query("projectMembers")
        .withIndex("by_projectId_and_userId", (q) => q.eq("projectId", f.projectId))
        .collect(),
    );
    expect(memberships.map((membership) => membership.userId)).not.toContain(f.memberUserId);
    expect(memberships).toHaveLength(2);
  },
  "connections:create": async (result, f, t) => {
    const connection = await stored(t, "connections", result as Id<"connections">);
    expect(connection).toMatchObject({ projectId: f.projectId, service: "stripe" });
    expect(JSON.stringify(connection)).not.toContain(STRIPE.secretKey);
  },
  "connections:list": (result, f) => {
    expect(result).toEqual([expect.objectContaining({ connectionId: f.connectionId, projectId: f.projectId, service: "stripe" })]);
  },
  "connections:get": (result, f) => {
    expect(result).toMatchObject({ connectionId: f.connectionId, service: "stripe", credentialHints: { secretKey: "sk_live_…4242" } });
  },
  "connections:updateCredentials": async (result, f, t) => {
    expect(result).toBeNull();
    const audit = await t.run((ctx) => ctx.db.query("auditLog").collect());
    expect(audit.filter((entry) => entry.action === "connection.credentials_updated" && entry.targetId === f.connectionId)).toHaveLength(1);
  },
  // Providers are unreachable here: the sync ran and failed at the provider, past every access check.
  "connections:syncMetrics": (result) => {
    expect(result).toEqual({ status: "error", metricsStored: 0, error: "Stripe is unavailable" });
  },
  "connections:startOAuth": (result) => {
    const url = new URL((result as { authorizationUrl: string }).authorizationUrl);
    expect(url.searchParams.get("client_id")).toBe("access-test-client");
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
  },
  "connections:remove": async (result, f, t) => {
    expect(result).toBeNull();
    expect(await stored(t, "connections", f.connectionId)).toBeNull();
  },
  "apiKeys:create": async (result, f, t) => {
    const { apiKeyId, apiKey } = result as { apiKeyId: Id<"apiKeys">; apiKey: string };
    expect(apiKey).toMatch(/^dt_live_/);
    const row = await stored(t, "apiKeys", apiKeyId);
    expect(row).toMatchObject({ projectId: f.projectId, name: "CI" });
    expect(JSON.stringify(row)).not.toContain(apiKey);
  },
  "apiKeys:list": (result, f) => {
    expect(result).toEqual([expect.objectContaining({ apiKeyId: f.apiKeyId, name: "CI" })]);
  },
  "apiKeys:revoke": async (result, f, t) => {
    expect(result).toBeNull();
    expect((await stored(t, "apiKeys", f.apiKeyId))?.revokedAt).toEqual(expect.any(Number));
  },
  "projects:rename": async (result, f, t) => {
    expect(result).toBeNull();
    expect((await t.run((ctx) => ctx.db.get("projects", f.projectId)))?.name).toBe("Renamed");
  },
  "projects:remove": async (result, f, t) => {
    expect(result).toBeNull();
    expect(await t.run((ctx) => ctx.db.get("projects", f.projectId))).toBeNull();
    expect(await stored(t, "connections", f.connectionId)).toBeNull();
  },
  "connections:pause": async (result, f, t) => {
    expect(result).toBe("inactive");
    expect((await stored(t, "connections", f.connectionId))?.status).toBe("inactive");
  },
  // The fixture's connection is not paused: resuming leaves it as it is.
  "connections:resume": async (result, f, t) => {
    expect(result).toBe("pending");
    expect((await stored(t, "connections", f.connectionId))?.status).toBe("pending");
  },
  // Nothing synced yet in the fixture.
  "metrics:latest": (result) => {
    expect(result).toEqual([]);
  },
  "metrics:series": (result) => {
    expect(result).toEqual({ resolution: "day", points: [] });
  },
  "insights:list": (result) => {
    expect((result as { page: unknown[]; isDone: boolean })).toMatchObject({ page: [], isDone: true });
  },
  "auditLog:list": (result, f) => {
    const { page } = result as { page: Array<{ action: string; targetId: string }> };
    expect(page).toContainEqual(expect.objectContaining({ action: "connection.created", targetId: f.connectionId }));
    expect(page).toContainEqual(expect.objectContaining({ action: "apiKey.created", targetId: f.apiKeyId }));
  },
};

let t: Backend;
let fixture: Fixture;

beforeEach(async () => {
  // Providers are unreachable here: a closed local port fails fast.
  for (const name of ["STRIPE_API_BASE_URL", "OPENAI_API_BASE_URL", "ANTHROPIC_API_BASE_URL"]) {
    vi.stubEnv(name, "http://127.0.0.1:9");
  }
  vi.stubEnv("GOOGLE_OAUTH_CLIENT_ID", "access-test-client");
  vi.stubEnv("GOOGLE_OAUTH_CLIENT_SECRET", "access-test-client-secret");
  vi.stubEnv("CONVEX_SITE_URL", "https://access-test.convex.site");
  t = newBackend();
  const project = await projectWithEveryRole(t);
  const connectionId = await project.owner.mutation(api.connections.create, {
    projectId: project.projectId,
    service: "stripe",
    credentials: STRIPE,
  });
  const { apiKeyId } = await project.owner.mutation(api.apiKeys.create, { projectId: project.projectId, name: "CI" });
  const invitationId = await project.owner.mutation(api.invitations.create, {
    projectId: project.projectId,
    email: "zed@example.test",
    role: "admin",
  });
  fixture = { ...project, connectionId, apiKeyId, invitationId, memberUserId: await userIdOf(t, "carol") };
});

describe.each(PUBLIC_FUNCTIONS)("$name", ({ name, access, call, allowedError }) => {
  test("refuses unauthenticated callers", async () => {
    expect((await errorOf(call(t, fixture))).code).toBe("UNAUTHENTICATED");
  });

  if (access === "user") return;

  test("refuses signed-in non-members", async () => {
    expect((await errorOf(call(fixture.outsider, fixture))).code).toBe("FORBIDDEN");
  });

  if (access !== "member") {
    test(`refuses members below ${access}`, async () => {
      const tooLow = access === "owner" ? [fixture.member, fixture.admin] : [fixture.member];
      for (const caller of tooLow) expect((await errorOf(call(caller, fixture))).code).toBe("FORBIDDEN");
    });
  }

  test(`allows a project ${access}`, async () => {
    const allowed = { owner: fixture.owner, admin: fixture.admin, member: fixture.member }[access];
    if (allowedError) {
      expect((await errorOf(call(allowed, fixture))).code).toBe(allowedError);
      return;
    }
    const check = ALLOWED[name];
    expect(check, `add what an allowed call of ${name} does to ALLOWED`).toBeDefined();
    await check!(await call(allowed, fixture), fixture, t);
  });
});

test("user-scoped functions only ever see the caller's own data", async () => {
  const { owner, outsider } = fixture;
  await owner.mutation(api.aiKeys.set, { provider: "openai", apiKey: "sk-ownersKey000000000000000" });
  expect(await outsider.query(api.aiKeys.get, {})).toBeNull();
  expect(await outsider.query(api.projects.list, {})).toEqual([]);
  expect(await outsider.query(api.invitations.listMine, {})).toEqual([]);
  await outsider.mutation(api.aiKeys.remove, {});
  expect(await owner.query(api.aiKeys.get, {})).not.toBeNull();
  const firstPage = { numItems: 10, cursor: null };
  expect((await outsider.query(api.auditLog.listMine, { paginationOpts: firstPage })).page).toEqual([]);
  expect((await owner.query(api.auditLog.listMine, { paginationOpts: firstPage })).page.map((entry) => entry.action)).toEqual([
    "aiKey.set",
  ]);
});

/** Every public function exported by the modules in src/convex, as "module:export" with its registration. */
function publicFunctions(): Map<string, { exportArgs: () => string; exportReturns: () => string }> {
  const modules = import.meta.glob<Record<string, unknown>>("../../convex/**/*.ts", { eager: true });
  const found = new Map<string, { exportArgs: () => string; exportReturns: () => string }>();
  for (const [path, exports] of Object.entries(modules)) {
    const moduleName = path.replace("../../convex/", "").replace(/\.ts$/, "");
    for (const [exportName, value] of Object.entries(exports)) {
      const registered = value as { isPublic?: boolean; exportArgs: () => string; exportReturns: () => string };
      if (typeof value === "function" && registered.isPublic === true) found.set(`${moduleName}:${exportName}`, registered);
    }
  }
  return found;
}

test("the table above lists every public function", () => {
  expect([...publicFunctions().keys()].sort()).toEqual(PUBLIC_FUNCTIONS.map((fn) => fn.name).sort());
});

test("ALLOWED checks exactly the functions the \"allows\" test calls", () => {
  const called = PUBLIC_FUNCTIONS.filter((fn) => fn.access !== "user" && !fn.allowedError).map((fn) => fn.name);
  expect(Object.keys(ALLOWED).sort()).toEqual(called.sort());
});

test("every public function validates its arguments and declares what it returns (so nothing else can leak)", () => {
  const checkedByHandler = new Set<string>(SECRET_ARGUMENT_FUNCTIONS);
  for (const [name, registered] of publicFunctions()) {
    const args = JSON.parse(registered.exportArgs()) as { type: string };
    const returns = JSON.parse(registered.exportReturns()) as { type: string } | null;
    // Arguments that carry a secret are checked by the handler instead (access/secretArgs.test.ts).
    expect(args.type, `${name} args`).toBe(checkedByHandler.has(name) ? "any" : "object");
    expect(returns, `${name} returns`).not.toBeNull();
    expect(JSON.stringify(returns), `${name} returns`).not.toContain('"type":"any"');
  }
});
