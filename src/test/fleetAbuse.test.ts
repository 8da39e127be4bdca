// Issue 18's abuse paths, each refused or bounded, with the numbers in the
// test names. Costs (executions, PBKDF2, provider calls) are counted on the
// cold harness (helpers/cold.ts via helpers/syncCost.ts), never timed.
import { describe, expect, test, vi } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import crons from "../convex/crons";
import { MAX_CONNECTIONS_PER_USER, MAX_PROJECTS_PER_USER } from "../convex/access/caps";
import { AUTH_FAILURE_LIMITS } from "../convex/access/rateLimits";
import { NOT_SCHEDULED, OWNER_SHARE_PER_RUN, SYNC_GROUP_SIZE, nextSyncSlot } from "../convex/sync/policy";
import { errorOf, projectWithEveryRole } from "./helpers/api";
import { identity, newBackend, type Backend } from "./helpers/convex";
import { seedConnection, seedProject } from "./helpers/seed";
import { SECRETS, useFakeProviders } from "./helpers/secrets";
import { measureCycle, measureFailingDay, newColdBackend, seedFleetFast } from "./helpers/syncCost";

const fake = useFakeProviders();
const GITHUB = { token: SECRETS.githubToken, repository: SECRETS.githubRepository };
const MINUTE = 60_000;

async function runCron(t: Backend): Promise<void> {
  await t.mutation(internal.sync.schedule.scheduleDueSyncs, {});
  await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(0));
}

function row(t: Backend, connectionId: Id<"connections">) {
  return t.run(async (ctx) => (await ctx.db.get("connections", connectionId))!);
}

describe("sync cost, cold", () => {
  test("40 connections in 20 projects of 2: one cycle costs ≤ 0.2 executions per connection (was 2.02) and 1 PBKDF2 per group of ≤ 25 (was 20 in all)", async () => {
    vi.stubEnv("PROVIDER_TIMEOUT_MS", "60000");
    const { t, counter } = newColdBackend();
    const ids = await seedFleetFast(t, 20, 2);
    const cost = await measureCycle(t, counter, fake(), ids, 20);
    expect(cost.syncedOnce).toBe(40);
    expect(cost.providerRequests).toBe(40);
    // 1 scheduling mutation + 2 groups × (action, beginSync, recordSyncOutcomes).
    expect(cost.executions).toBe(1 + 2 * 3);
    expect(cost.executions / 40).toBeLessThanOrEqual(0.2);
    expect(cost.pbkdf2).toBe(Math.ceil(40 / SYNC_GROUP_SIZE));
    expect(counter.byFunction["sync/run:beginSync"]).toBe(2);
  });

  test("a connection that always answers 401 costs 1 provider call a day (≤ 12; was 96) and says the user must act", async () => {
    const { t, counter } = newColdBackend();
    const [connectionId] = await seedFleetFast(t, 1, 1);
    fake().setMode("github.repo", 401);
    const day = await measureFailingDay(t, counter, fake(), connectionId!);
    expect(day.providerRequests).toBe(1);
    expect(day.status).toBe("needs_reauth");
    expect(day.lastError).toMatch(/until the credentials are updated/);
    expect(day.stillScheduled).toBe(false);
    expect(day.executions).toBeLessThanOrEqual(4);
  });

  test("a connection that always answers 503 backs off exponentially: ≤ 10 provider calls a day (was 96), capped at one per 6 hours", async () => {
    const { t, counter } = newColdBackend();
    const [connectionId] = await seedFleetFast(t, 1, 1);
    fake().setMode("github.repo", 503);
    const day = await measureFailingDay(t, counter, fake(), connectionId!);
    // 15, 30, 60, 120, 240 minutes, then every 360: 1 + 5 + 3 tries in 24 hours.
    expect(day.providerRequests).toBeGreaterThanOrEqual(8);
    expect(day.providerRequests).toBeLessThanOrEqual(10);
    expect(day.status).toBe("error");
    expect(day.stillScheduled).toBe(true);
  });
});

describe("needs_reauth until the user acts", () => {
  test("updating the credentials of a parked connection resumes syncing", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { bob: "owner" });
    const connectionId = await seedConnection(t, projectId, "github", GITHUB, "active");
    fake().setMode("github.repo", 401);
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    await runCron(t);
    expect(await row(t, connectionId)).toMatchObject({ status: "needs_reauth", nextSyncAt: NOT_SCHEDULED });
    vi.setSystemTime(Date.now() + 24 * 60 * MINUTE);
    await runCron(t);
    expect(fake().requests).toHaveLength(1);

    fake().setMode("github.repo", "ok");
    const bob = t.withIdentity(identity("bob"));
    await bob.mutation(api.connections.updateCredentials, { connectionId, credentials: GITHUB });
    expect(await row(t, connectionId)).toMatchObject({ status: "pending", nextSyncAt: Date.now() });
    await runCron(t);
    const resumed = await row(t, connectionId);
    expect(resumed.lastError).toBeUndefined();
    expect(resumed.status).toBe("active");
    expect(resumed.syncFailures).toBeUndefined();
  });
});

describe("credential writes stay within the manual-sync allowance", () => {
  test("rewriting the same key on 50 connections each minute for 3 minutes syncs at most 36 times before their slot (was 150)", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { bob: "owner" });
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    vi.setSystemTime(nextSyncSlot(Date.now(), 15 * MINUTE) + MINUTE); // 14 minutes before the next slot
    const ids: Id<"connections">[] = [];
    for (let i = 0; i < 50; i++) ids.push(await seedConnection(t, projectId, "github", GITHUB, "active"));
    await runCron(t); // their first sync
    const first = fake().requests.length;
    const bob = t.withIdentity(identity("bob"));
    for (let minute = 0; minute < 3; minute++) {
      for (const connectionId of ids) await bob.mutation(api.connections.updateCredentials, { connectionId, credentials: GITHUB });
      await runCron(t);
      vi.setSystemTime(Date.now() + MINUTE);
    }
    const syncs = fake().requests.length - first;
    // The user's and project's buckets: a burst of 12, then 12 a minute.
    expect(syncs).toBeLessThanOrEqual(12 + 2 * 12);
    expect(syncs).toBeGreaterThanOrEqual(12);
  });

  test("creating 40 connections with candidate keys in a minute checks at most 12 of them at once (was 40); the rest wait for their slot", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { bob: "owner" });
    const bob = t.withIdentity(identity("bob"));
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    const now = Date.now();
    const ids: Id<"connections">[] = [];
    for (let i = 0; i < 40; i++) {
      ids.push(await bob.mutation(api.connections.create, { projectId, service: "github", credentials: { ...GITHUB, token: `ghp_${String(i).padStart(36, "0")}` } }));
    }
    const dueNow = (await Promise.all(ids.map((id) => row(t, id)))).filter((connection) => connection.nextSyncAt! <= now);
    expect(dueNow).toHaveLength(12);
    await runCron(t);
    expect(fake().requests).toHaveLength(12);
  });
});

describe("per-user caps", () => {
  test(`a user owns at most ${MAX_PROJECTS_PER_USER} projects: the 21st is LIMIT_REACHED`, async () => {
    const t = newBackend();
    const alice = t.withIdentity(identity("alice"));
    for (let i = 0; i < MAX_PROJECTS_PER_USER; i++) await alice.mutation(api.projects.create, { name: `P${i}` });
    expect(await errorOf(alice.mutation(api.projects.create, { name: "One more" }))).toMatchObject({
      code: "LIMIT_REACHED",
      reason: "PROJECTS_PER_USER",
      limit: MAX_PROJECTS_PER_USER,
    });
  });

  test(`${MAX_CONNECTIONS_PER_USER} connections across one owner's projects: the 101st is LIMIT_REACHED, also for an admin of theirs`, async () => {
    const t = newBackend();
    const { projectId, owner, admin } = await projectWithEveryRole(t);
    const other = await owner.mutation(api.projects.create, { name: "Side" });
    await t.run(async (ctx) => {
      for (let i = 0; i < MAX_CONNECTIONS_PER_USER; i++) {
        await ctx.db.insert("connections", {
          projectId: i % 2 ? projectId : other,
          service: "github",
          status: "active",
          healthScore: 100,
          createdAt: 0,
          updatedAt: 0,
        });
      }
    });
    expect(await errorOf(admin.mutation(api.connections.create, { projectId, service: "github", credentials: GITHUB }))).toMatchObject({
      code: "LIMIT_REACHED",
      reason: "CONNECTIONS_PER_USER",
      limit: MAX_CONNECTIONS_PER_USER,
    });
  });
});

describe("fair shares per owner", () => {
  test(`an owner with 300 due connections (12 groups) gets ${OWNER_SHARE_PER_RUN} per cron run; another owner's 1 is synced in the same run`, async () => {
    vi.stubEnv("PROVIDER_TIMEOUT_MS", "60000");
    const t = newBackend();
    const hog = await seedProject(t, { hog: "owner" });
    await t.run(async (ctx) => {
      // Created before the caps (seeded directly).
      for (let i = 0; i < 300; i++) {
        await ctx.db.insert("connections", { projectId: hog.projectId, service: "unknown_service", status: "active", healthScore: 100, createdAt: 0, updatedAt: 0, nextSyncAt: 0 });
      }
    });
    const { projectId } = await seedProject(t, { carol: "owner" });
    const carols = await seedConnection(t, projectId, "github", GITHUB, "active");
    await t.run((ctx) => ctx.db.patch("connections", carols, { nextSyncAt: 1 })); // due after all of the hog's
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    await runCron(t);
    expect(await row(t, carols)).toMatchObject({ status: "active" });
    const hogRows = await t.run((ctx) => ctx.db.query("connections").withIndex("by_projectId", (q) => q.eq("projectId", hog.projectId)).collect());
    expect(hogRows.filter((connection) => connection.status === "error")).toHaveLength(OWNER_SHARE_PER_RUN);
  });
});

describe("bounded rate-limit state", () => {
  test("cron: 50 forged sources' failure buckets are deleted once refilled (51 documents to 0); the prefix bucket still draining is kept until full", async () => {
    expect(Object.values(crons.crons).find((cron) => cron.name === "access/rateLimits:deleteRefilledBuckets")?.schedule).toEqual({
      type: "interval",
      minutes: 10,
    });
    const t = newBackend();
    const { projectId, admin } = await projectWithEveryRole(t);
    const { apiKey } = await admin.mutation(api.apiKeys.create, { projectId, name: "k" });
    vi.useFakeTimers({ toFake: ["Date"] });
    const wrong = `${apiKey.slice(0, 12)}${"x".repeat(apiKey.length - 12)}`;
    for (let i = 0; i < 50; i++) {
      await t.withRequestMetadata({ ip: `203.0.113.${i}` }).fetch("/api/v1/projects/metrics", { headers: { Authorization: `Bearer ${wrong}` } });
    }
    const buckets = () => t.run((ctx) => ctx.db.query("rateLimits").collect());
    expect((await buckets()).length).toBe(51); // 50 sources + 1 prefix
    const { rate, period, capacity } = AUTH_FAILURE_LIMITS.apiAuthFailureBySource;
    // One token back: each source (1 failure) is full again; the prefix (20 failures or more) is not.
    vi.setSystemTime(Date.now() + period / rate);
    expect(await t.mutation(internal.access.rateLimits.deleteRefilledBuckets, {})).toEqual({ deleted: 50, kept: 1 });
    vi.setSystemTime(Date.now() + (capacity * period) / rate);
    // The forwarding path (docs/architecture.md "Deploying"): a batch scheduled before the move still runs.
    expect(await t.mutation(internal.rateLimits.deleteRefilledBuckets, {})).toEqual({ deleted: 1, kept: 0 });
    expect(await buckets()).toEqual([]);
  });
});

describe("invitations", () => {
  test("removing a member revokes the pending invitations addressed to them: an owner-made admin invitation no longer lets them back in", async () => {
    const t = newBackend();
    const { projectId, owner, member } = await projectWithEveryRole(t);
    const invitationId = await owner.mutation(api.invitations.create, { projectId, email: identity("carol").email, role: "admin" });
    const carolId = (await t.run((ctx) => ctx.db.query("users").collect())).find((user) => user.email === identity("carol").email)!._id;
    await owner.mutation(api.projects.removeMember, { projectId, userId: carolId });
    expect(await errorOf(member.mutation(api.invitations.accept, { invitationId }))).toMatchObject({ code: "CONFLICT" });
    expect(await member.query(api.invitations.listMine, {})).toEqual([]);
  });

  test("an invitee can decline: 1 invitation declined leaves their list and cannot be accepted", async () => {
    const t = newBackend();
    const { projectId, owner } = await projectWithEveryRole(t);
    const dave = t.withIdentity(identity("dave"));
    const invitationId = await owner.mutation(api.invitations.create, { projectId, email: identity("dave").email, role: "member" });
    expect(await dave.query(api.invitations.listMine, {})).toHaveLength(1);
    await dave.mutation(api.invitations.decline, { invitationId });
    expect(await dave.query(api.invitations.listMine, {})).toEqual([]);
    expect(await errorOf(dave.mutation(api.invitations.accept, { invitationId }))).toMatchObject({ code: "CONFLICT" });
    // Someone else cannot decline it for them.
    const other = await owner.mutation(api.invitations.create, { projectId, email: identity("erin").email, role: "member" });
    expect(await errorOf(dave.mutation(api.invitations.decline, { invitationId: other }))).toMatchObject({ code: "NOT_FOUND" });
  });

  test("expired invitations are not listed: 3 expired of 4 leave 1", async () => {
    const t = newBackend();
    const { owner } = await projectWithEveryRole(t);
    const dave = t.withIdentity(identity("dave"));
    const ids: Id<"invitations">[] = [];
    for (const role of ["member", "admin", "owner", "member"] as const) {
      const other = await owner.mutation(api.projects.create, { name: `For dave ${role}` });
      ids.push(await owner.mutation(api.invitations.create, { projectId: other, email: identity("dave").email, role }));
    }
    await t.run(async (ctx) => {
      for (const id of ids.slice(0, 3)) await ctx.db.patch("invitations", id, { expiresAt: Date.now() - 1 });
    });
    expect((await dave.query(api.invitations.listMine, {})).map((invitation) => invitation.invitationId)).toEqual([ids[3]]);
  });
});

describe("display names from the identity provider", () => {
  test("bidi, ANSI and 5,000 zero-width characters are cleaned like project names before they are stored", async () => {
    const t = newBackend();
    const name = `\u202Eevil\u001b[31m red${"\u200B".repeat(5000)}tail`;
    const caller = t.withIdentity({ ...identity("zed"), name });
    const { name: stored } = await caller.mutation(api.users.store, {});
    expect(stored).toBe("evil [31m red tail");
    expect(stored!.length).toBeLessThanOrEqual(100);
    const blank = t.withIdentity({ ...identity("blank"), name: "\u200B\u200B\u202E" });
    expect((await blank.mutation(api.users.store, {})).name).toBeUndefined();
  });
});
