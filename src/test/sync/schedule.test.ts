import { describe, expect, onTestFinished, test, vi } from "vitest";
import { api } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import crons from "../../convex/crons";
import { DEFAULT_SYNC_INTERVAL_MINUTES, SYNC_GROUP_SIZE, nextSyncSlot } from "../../convex/sync/policy";
import { newBackend, type Backend } from "../helpers/convex";
import { seedConnection, seedProject } from "../helpers/seed";
import { useFakeProviders } from "../helpers/secrets";
import { GITHUB, auditOf, connection, metricsOf, runCron, setup } from "../helpers/syncRows";

const fake = useFakeProviders();

const INTERVAL_MS = DEFAULT_SYNC_INTERVAL_MINUTES * 60_000;

/** Checks a synced row is next due at the deployment's next slot, 0.5 to 1.5 intervals after its sync. */
function expectNextSlot(row: { lastSyncedAt?: number; nextSyncAt?: number }, intervalMs = INTERVAL_MS) {
  expect(row.nextSyncAt).toBe(nextSyncSlot(row.lastSyncedAt!, intervalMs));
  expect(row.nextSyncAt! - row.lastSyncedAt!).toBeGreaterThan(intervalMs / 2);
  expect(row.nextSyncAt! - row.lastSyncedAt!).toBeLessThanOrEqual(1.5 * intervalMs);
}

function scheduledGroups(t: Backend) {
  return t.run(async (ctx) =>
    (await ctx.db.system.query("_scheduled_functions").collect())
      .filter((job) => job.name.endsWith("syncGroup"))
      .map((job) => (job.args[0] as { connectionIds: Id<"connections">[] }).connectionIds),
  );
}

describe("sync cron", () => {
  test("runs every minute through sync/schedule.ts scheduleDueSyncs", () => {
    const job = Object.values(crons.crons).find((cron) => cron.name === "sync/schedule:scheduleDueSyncs");
    expect(job?.schedule).toEqual({ type: "interval", minutes: 1 });
    expect(job?.args).toEqual([{}]);
  });

  test("syncs every due connection once, in groups of at most SYNC_GROUP_SIZE across projects; paused ones are only rescheduled", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { owner: "owner" });
    const { projectId: otherProjectId } = await seedProject(t, { other: "owner" });
    const byStatus = { active: SYNC_GROUP_SIZE, pending: 2, error: 3, inactive: 2 };
    const ids: Record<string, Id<"connections">[]> = {};
    for (const [status, count] of Object.entries(byStatus)) {
      ids[status] = [];
      for (let i = 0; i < count; i++) {
        ids[status].push(await seedConnection(t, projectId, "github", GITHUB, status as keyof typeof byStatus));
      }
    }
    const other = await seedConnection(t, otherProjectId, "github", GITHUB, "active");

    await runCron(t);

    const synced = [...ids.active!, ...ids.pending!, ...ids.error!, other];
    expect(fake().requests).toHaveLength(synced.length);
    for (const id of synced) {
      expect(await metricsOf(t, id)).toHaveLength(4);
      const row = await connection(t, id);
      expect(row.status).toBe("active");
      expectNextSlot(row);
    }
    for (const id of ids.inactive!) {
      expect(await metricsOf(t, id)).toEqual([]);
      const row = await connection(t, id);
      expect(row.status).toBe("inactive");
      expect(row.nextSyncAt).toBeGreaterThan(Date.now() + INTERVAL_MS / 2);
    }
    const cronAudit = await auditOf(t, synced[0]!);
    expect(cronAudit).toHaveLength(1);
    expect(cronAudit[0]).toMatchObject({ action: "connection.credentials_decrypted", detail: "sync (cron)" });
    expect(cronAudit[0]?.actorId).toBeUndefined();

    // 31 due connections of two projects: 2 groups (25 + 6), the second mixing both projects.
    const sizes = (await scheduledGroups(t)).map((group) => group.length).sort((a, b) => a - b);
    expect(sizes).toEqual([31 - SYNC_GROUP_SIZE, SYNC_GROUP_SIZE]);

    // Nothing is due again before the next slot; then all of it is.
    await runCron(t);
    expect(fake().requests).toHaveLength(synced.length);
    vi.setSystemTime(Date.now() + 1.5 * INTERVAL_MS);
    await runCron(t);
    expect(fake().requests).toHaveLength(2 * synced.length);
  });

  test("SYNC_INTERVAL_MINUTES sets the interval", async () => {
    vi.stubEnv("SYNC_INTERVAL_MINUTES", "60");
    onTestFinished(() => void vi.stubEnv("SYNC_INTERVAL_MINUTES", ""));
    const t = newBackend();
    const { connectionId } = await setup(t);
    await runCron(t);
    expectNextSlot(await connection(t, connectionId), 60 * 60_000);
  });

  test("a manual sync moves the next scheduled sync to the next slot", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    await alice.action(api.connections.syncMetrics, { connectionId });
    expectNextSlot(await connection(t, connectionId));

    await runCron(t);
    expect(fake().requests).toHaveLength(1);
  });

  test("connections of different projects fall due together after their first sync, however they were created", async () => {
    const t = newBackend();
    const { connectionId: first, alice } = await setup(t);
    const { projectId: otherProject } = await seedProject(t, { carol: "owner" });
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    await alice.action(api.connections.syncMetrics, { connectionId: first });
    vi.setSystemTime(Date.now() + 7 * 60_000);
    const second = await seedConnection(t, otherProject, "github", GITHUB);
    await runCron(t); // syncs the new one only
    expect(fake().requests).toHaveLength(2);
    const slots = [(await connection(t, first)).nextSyncAt!, (await connection(t, second)).nextSyncAt!];
    expect(Math.abs(slots[0]! - slots[1]!) % INTERVAL_MS).toBe(0);

    vi.setSystemTime(Math.max(...slots));
    await runCron(t);
    expect(fake().requests).toHaveLength(4);
    expect(await scheduledGroups(t)).toContainEqual(expect.arrayContaining([first, second]));
    // From then on they stay together.
    expect((await connection(t, first)).nextSyncAt).toBe((await connection(t, second)).nextSyncAt);
  });

  test("a run starts at most groupsLeft groups; the rest stay due for the next run", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { owner: "owner" });
    const ids: Id<"connections">[] = [];
    for (let i = 0; i < SYNC_GROUP_SIZE + 1; i++) ids.push(await seedConnection(t, projectId, "github", GITHUB, "pending"));

    await runCron(t, { groupsLeft: 1 });

    const statuses = await Promise.all(ids.map(async (id) => (await connection(t, id)).status));
    expect(statuses.filter((status) => status === "active")).toHaveLength(SYNC_GROUP_SIZE);
    expect(statuses.filter((status) => status === "pending")).toHaveLength(1);
    await runCron(t);
    for (const id of ids) expect((await connection(t, id)).status).toBe("active");
    expect(fake().requests).toHaveLength(SYNC_GROUP_SIZE + 1);
  });

  test("a failing connection in a cron run is marked error and the others of its group still sync", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { owner: "owner" });
    const good = await seedConnection(t, projectId, "github", GITHUB, "active");
    const bad = await seedConnection(t, projectId, "github", { ...GITHUB, repository: "acme/missing" }, "active");

    await runCron(t);

    expect(await connection(t, good)).toMatchObject({ status: "active" });
    expect(await connection(t, bad)).toMatchObject({ status: "error", lastError: "GitHub did not find the requested resource (HTTP 404)" });
    expect(await metricsOf(t, good)).toHaveLength(4);
  });

  test("credentials that do not decrypt fail their connection only, audited; the group's others sync", async () => {
    const t = newBackend();
    const { projectId } = await seedProject(t, { owner: "owner" });
    const good = await seedConnection(t, projectId, "github", GITHUB, "active");
    const broken = await seedConnection(t, projectId, "github", GITHUB, "active");
    await t.run(async (ctx) => {
      const other = (await ctx.db.get("connections", good))!.encryptedCredentials;
      await ctx.db.patch("connections", broken, { encryptedCredentials: other }); // bound to another row
    });

    await runCron(t);

    expect(await connection(t, good)).toMatchObject({ status: "active" });
    expect(await connection(t, broken)).toMatchObject({ status: "error" });
    expect((await auditOf(t, broken)).map((entry) => entry.action)).toEqual([
      "connection.credentials_decrypted",
      "connection.decryption_failed",
    ]);
    expect(fake().requests).toHaveLength(1);
  });
});
