import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { encryptLegacy, LEGACY_READ } from "./helpers/legacy";
import { TEST_MASTER_KEY } from "./helpers/keys";
import { encryptV1 } from "./helpers/v1";
import { api } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { MAX_CONNECTIONS } from "../convex/access/caps";
import { HISTORY_ROWS_PER_BATCH } from "../convex/jobs/connectionHistory";
import { decryptCredentials, loadKeyring, readRootSalt } from "../convex/storedSecrets/encryption";
import { errorOf, everythingStored, projectWithEveryRole, type ProjectFixture } from "./helpers/api";
import { newBackend, type Backend } from "./helpers/convex";

const STRIPE_KEY = "sk_live_51HxConnectionsTest0004242";
const GITHUB = { token: "ghp_ConnectionsTestToken0000000000009999", repository: "acme/widgets" };

let t: Backend;
let project: ProjectFixture;

beforeEach(async () => {
  t = newBackend();
  project = await projectWithEveryRole(t);
});

function createStripe(projectId: Id<"projects"> = project.projectId, secretKey = STRIPE_KEY) {
  return project.owner.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey } });
}

function storedConnection(connectionId: Id<"connections">) {
  return t.run(async (ctx) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection) throw new Error("connection not stored");
    return connection;
  });
}

/** Decrypts a stored connection's credentials the way the sync action will. */
function decryptStored(connectionId: Id<"connections">) {
  return t.run(async (ctx) => {
    const connection = await ctx.db.get("connections", connectionId);
    if (!connection?.encryptedCredentials) throw new Error("no ciphertext stored");
    const { credentials } = await decryptCredentials(
      loadKeyring(await readRootSalt(ctx.db)),
      connection.projectId,
      connection._id,
      connection.encryptedCredentials,
      connection.secretVersion,
LEGACY_READ,
    );
    return credentials;
  });
}

describe("create", () => {
  test("stores only ciphertext, which decrypts to the (trimmed) credentials given", async () => {
    const connectionId = await project.admin.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "github",
      name: "  Widgets repo  ",
      credentials: { token: ` ${GITHUB.token} `, repository: GITHUB.repository },
    });
    const stored = await storedConnection(connectionId);
    expect(stored.encryptedCredentials).toMatch(/^dtenc:v2:/);
    expect(stored.secretVersion).toBe(1);
    expect(stored.credentials).toBeUndefined();
    expect(stored).toMatchObject({ projectId: project.projectId, service: "github", name: "Widgets repo", status: "pending" });
    expect(await everythingStored(t)).not.toContain(GITHUB.token);
    expect(await decryptStored(connectionId)).toEqual(GITHUB);
  });

  test("hints mask secret fields and show the others in full", async () => {
    const githubId = await project.owner.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "github",
      credentials: GITHUB,
    });
    const stripeId = await createStripe();
    expect((await project.member.query(api.connections.get, { connectionId: githubId })).credentialHints).toEqual({
      token: "ghp_…9999",
      repository: "acme/widgets",
    });
    expect((await project.member.query(api.connections.get, { connectionId: stripeId })).credentialHints).toEqual({
      secretKey: "sk_live_…4242",
    });
  });

  test("the same credentials give different ciphertext in different projects, bound to their connection", async () => {
    const otherProjectId = await project.owner.mutation(api.projects.create, { name: "Other" });
    const first = await storedConnection(await createStripe());
    const second = await storedConnection(await createStripe(otherProjectId));
    expect(first.encryptedCredentials).not.toEqual(second.encryptedCredentials);
    // Ciphertext copied to another connection does not decrypt there.
    await t.run((ctx) => ctx.db.patch("connections", second._id, { encryptedCredentials: first.encryptedCredentials }));
    expect((await errorOf(decryptStored(second._id))).code).toBe("DECRYPTION_FAILED");
  });

  test("defaults the name to the service's display name", async () => {
    const connectionId = await createStripe();
    expect((await project.member.query(api.connections.get, { connectionId })).name).toBe("Stripe");
  });

  test.each([
    ["an unknown service", "nosuch", { secretKey: STRIPE_KEY }],
    ["a missing field", "github", { token: GITHUB.token }],
    ["an empty field", "stripe", { secretKey: "   " }],
    ["an unexpected field", "stripe", { secretKey: STRIPE_KEY, password: "x" }],
    ["a Stripe publishable key instead of a secret one", "stripe", { secretKey: "pk_live_NotASecretKey000000000000" }],
    ["a repository that is not owner/name", "github", { token: GITHUB.token, repository: "../../admin" }],
    ["a repository named ..", "github", { token: GITHUB.token, repository: "acme/.." }],
    ["a repository named .", "github", { token: GITHUB.token, repository: "acme/." }],
    ["an owner named ..", "github", { token: GITHUB.token, repository: "../widgets" }],
  ])("refuses %s with INVALID_CREDENTIALS, never echoing a value", async (_case, service, credentials) => {
    const error = await errorOf(
      project.owner.mutation(api.connections.create, { projectId: project.projectId, service, credentials }),
    );
    expect(error.code).toBe("INVALID_CREDENTIALS");
    expect(error.message).not.toContain(STRIPE_KEY);
    expect(error.message).not.toContain(GITHUB.token);
  });

  test.each([
    ["a key pasted as the service id", STRIPE_KEY, { secretKey: STRIPE_KEY }],
    ["a key pasted as a field name", "stripe", { [STRIPE_KEY]: STRIPE_KEY }],
    ["a token pasted as a field name next to the real field", "github", { ...GITHUB, [GITHUB.token]: "x" }],
    ["an unknown service id with markup", "<img src=x onerror=alert(1)>", { secretKey: STRIPE_KEY }],
  ])("never echoes unknown input (%s): the message names only known services and fields", async (_case, service, credentials) => {
    const error = await errorOf(
      project.owner.mutation(api.connections.create, { projectId: project.projectId, service, credentials }),
    );
    expect(error.code).toBe("INVALID_CREDENTIALS");
    expect(error.message).not.toContain(service === "stripe" || service === "github" ? STRIPE_KEY : service);
    for (const name of Object.keys(credentials)) {
      if (!["secretKey", "token", "repository"].includes(name)) expect(error.message).not.toContain(name);
    }
    expect(error.message).not.toContain(STRIPE_KEY);
    expect(error.message).not.toContain(GITHUB.token);
    expect(error.message).toMatch(/expected one of: stripe, github, plausible|takes only these credential fields/);
  });

  test.each([["   "], ["x".repeat(101)]])("refuses the name %j with INVALID_ARGUMENT", async (name) => {
    const call = project.owner.mutation(api.connections.create, {
      projectId: project.projectId,
      service: "stripe",
      name,
      credentials: { secretKey: STRIPE_KEY },
    });
    expect((await errorOf(call)).code).toBe("INVALID_ARGUMENT");
  });

  test(`a project has at most ${MAX_CONNECTIONS} connections (CONFLICT), so list always shows them all`, async () => {
    // All but one inserted directly: creating them one by one through the API would only make the test slow.
    await t.run(async (ctx) => {
      for (let i = 1; i < MAX_CONNECTIONS; i++) {
        await ctx.db.insert("connections", {
          projectId: project.projectId,
          service: "stripe",
          name: `Stripe ${i}`,
          credentialHints: {},
          status: "pending",
          healthScore: 100,
          createdAt: i,
          updatedAt: i,
        });
      }
    });
    const last = await createStripe();
    const error = await errorOf(createStripe());
    expect(error.code).toBe("CONFLICT");
    expect(error.message).toContain(`${MAX_CONNECTIONS} connections`);
    const listed = await project.member.query(api.connections.list, { projectId: project.projectId });
    expect(listed).toHaveLength(MAX_CONNECTIONS);
    expect(listed.map((connection) => connection.connectionId)).toContain(last);

    await project.owner.mutation(api.connections.remove, { connectionId: last });
    await createStripe();
    // The owner's other projects share their per-user cap of 100 (access/caps.ts): LIMIT_REACHED there.
    const otherProjectId = await project.owner.mutation(api.projects.create, { name: "Other" });
    expect(await errorOf(createStripe(otherProjectId))).toMatchObject({ code: "LIMIT_REACHED", reason: "CONNECTIONS_PER_USER" });
  });

  test("without a master key fails with ENCRYPTION_UNAVAILABLE and stores nothing", async () => {
    vi.stubEnv("MASTER_ENCRYPTION_KEY", "");
    expect((await errorOf(createStripe())).code).toBe("ENCRYPTION_UNAVAILABLE");
    expect(await t.run((ctx) => ctx.db.query("connections").collect())).toEqual([]);
  });
});

describe("credential formats", () => {
  const PLAUSIBLE_KEY = "p".repeat(32);
  const STRIPE_RANDOM_24 = "A1b2C3d4E5f6G7h8I9j0K1l2";
  const GITHUB_TOKEN = `ghp_${"x".repeat(32)}9999`;

  function create(service: string, credentials: Record<string, string>) {
    return project.owner.mutation(api.connections.create, { projectId: project.projectId, service, credentials });
  }

  test.each([
    ["a Stripe key with a 23-character random part", "stripe", { secretKey: `sk_live_${STRIPE_RANDOM_24.slice(1)}` }],
    ["the shortest Stripe key the old check let through", "stripe", { secretKey: "sk_live_1234" }],
    ["a GitHub token with 35 characters after ghp_", "github", { token: `ghp_${"x".repeat(35)}`, repository: "acme/widgets" }],
    ["a GitHub token of another shape", "github", { token: "not-a-github-token-at-all-000000000000000", repository: "acme/widgets" }],
    ["a 31-character Plausible key", "plausible", { apiKey: "p".repeat(31), siteId: "example.com" }],
    ["a Plausible site id that is a URL", "plausible", { apiKey: PLAUSIBLE_KEY, siteId: "https://example.com" }],
    ["a Plausible site id without a dot", "plausible", { apiKey: PLAUSIBLE_KEY, siteId: "mysite" }],
    ["a Plausible site id with a space", "plausible", { apiKey: PLAUSIBLE_KEY, siteId: "exa mple.com" }],
    ["a Plausible site id with markup", "plausible", { apiKey: PLAUSIBLE_KEY, siteId: "<b>x</b>.com" }],
    ["a Plausible site id with a path", "plausible", { apiKey: PLAUSIBLE_KEY, siteId: "example.com/../admin" }],
    ["a Plausible site id with a leading hyphen", "plausible", { apiKey: PLAUSIBLE_KEY, siteId: "-example.com" }],
  ])("refuses %s with INVALID_CREDENTIALS", async (_case, service, credentials) => {
    const error = await errorOf(create(service, credentials));
    expect(error.code).toBe("INVALID_CREDENTIALS");
    for (const value of Object.values(credentials)) expect(error.message).not.toContain(value);
  });

  test("the shortest accepted key of each service has a hint showing at most 4 characters, a quarter of its random part", async () => {
    const accepted: [string, Record<string, string>, Record<string, string>][] = [
      ["stripe", { secretKey: `sk_live_${STRIPE_RANDOM_24}` }, { secretKey: "sk_live_…K1l2" }],
      ["stripe", { secretKey: `rk_test_${STRIPE_RANDOM_24}` }, { secretKey: "rk_test_…K1l2" }],
      ["github", { token: GITHUB_TOKEN, repository: "acme/widgets" }, { token: "ghp_…9999", repository: "acme/widgets" }],
      ["github", { token: "0123456789abcdef0123456789abcdef01234567", repository: "acme/w" }, { token: "…4567", repository: "acme/w" }],
      ["plausible", { apiKey: `${"p".repeat(28)}wxyz`, siteId: "xn--bcher-kva.example" }, { apiKey: "…wxyz", siteId: "xn--bcher-kva.example" }],
    ];
    for (const [service, credentials, hints] of accepted) {
      const connectionId = await create(service, credentials);
      expect((await project.member.query(api.connections.get, { connectionId })).credentialHints).toEqual(hints);
    }
  });
});

describe("list and get", () => {
  test("return metadata and hints only, never ciphertext", async () => {
    const connectionId = await createStripe();
    const listed = await project.member.query(api.connections.list, { projectId: project.projectId });
    const got = await project.member.query(api.connections.get, { connectionId });
    expect(listed).toEqual([got]);
    expect(Object.keys(got).sort()).toEqual(
      ["connectionId", "projectId", "service", "name", "credentialHints", "status", "healthScore", "createdAt", "updatedAt"].sort(),
    );
    expect(JSON.stringify(got)).not.toContain((await storedConnection(connectionId)).encryptedCredentials);
  });

  test("list shows only the project's own connections", async () => {
    const otherProjectId = await project.owner.mutation(api.projects.create, { name: "Other" });
    const mine = await createStripe();
    await createStripe(otherProjectId);
    const listed = await project.member.query(api.connections.list, { projectId: project.projectId });
    expect(listed.map((connection) => connection.connectionId)).toEqual([mine]);
  });

  test("get of a removed connection is NOT_FOUND", async () => {
    const connectionId = await createStripe();
    await project.owner.mutation(api.connections.remove, { connectionId });
    expect((await errorOf(project.member.query(api.connections.get, { connectionId }))).code).toBe("NOT_FOUND");
  });
});

describe("updateCredentials", () => {
  test("re-encrypts, updates the hints and drops legacy plaintext", async () => {
    const connectionId = await createStripe();
    await t.run((ctx) => ctx.db.patch("connections", connectionId, { credentials: { secretKey: STRIPE_KEY } }));
    const before = await storedConnection(connectionId);
    const newKey = "rk_live_RotatedKey00000000007777";
    await project.admin.mutation(api.connections.updateCredentials, { connectionId, credentials: { secretKey: newKey } });
    const after = await storedConnection(connectionId);
    expect(after.encryptedCredentials).not.toEqual(before.encryptedCredentials);
    expect(after.credentials).toBeUndefined();
    expect(after.credentialHints).toEqual({ secretKey: "rk_live_…7777" });
    expect(await decryptStored(connectionId)).toEqual({ secretKey: newKey });
    const stored = await everythingStored(t);
    expect(stored).not.toContain(newKey);
    expect(stored).not.toContain(STRIPE_KEY);
  });

  test("bumps the secret version: the replaced ciphertext, restored into the row, no longer decrypts", async () => {
    const connectionId = await createStripe();
    const before = await storedConnection(connectionId);
    expect(before.secretVersion).toBe(1);
    await project.admin.mutation(api.connections.updateCredentials, {
      connectionId,
      credentials: { secretKey: "rk_live_ReplacementKey0000055550000" },
    });
    expect((await storedConnection(connectionId)).secretVersion).toBe(2);
    // Restored from a backup: same row, same purpose and key, but written for version 1.
    await t.run((ctx) => ctx.db.patch("connections", connectionId, { encryptedCredentials: before.encryptedCredentials }));
    const error = await errorOf(decryptStored(connectionId));
    expect(error.code).toBe("DECRYPTION_FAILED");
    expect(JSON.stringify(error)).not.toContain(STRIPE_KEY);
  });

  test("a v1 or original-format copy restored into a row whose secret was replaced since (version above 0) is refused", async () => {
    const connectionId = await createStripe();
    const { projectId } = await storedConnection(connectionId);
    const purpose = `connections/${connectionId}/credentials`;
    const oldCredentials = JSON.stringify({ secretKey: "sk_live_OlderCopyFromBackup000000000001" });
    // Both formats bind no version: they open at version 0 (a row never rewritten since them) ...
    const copies = [
      await encryptV1(TEST_MASTER_KEY, projectId, purpose, oldCredentials),
      await encryptLegacy(TEST_MASTER_KEY, projectId, oldCredentials),
    ];
    for (const copy of copies) {
      await t.run((ctx) => ctx.db.patch("connections", connectionId, { encryptedCredentials: copy, secretVersion: undefined }));
      expect(await decryptStored(connectionId)).toEqual(JSON.parse(oldCredentials));
      // ... but never in a row at version 1 or more, which only format v2 has ever written.
      await t.run((ctx) => ctx.db.patch("connections", connectionId, { encryptedCredentials: copy, secretVersion: 1 }));
      const error = await errorOf(decryptStored(connectionId));
      expect(error.code).toBe("DECRYPTION_FAILED");
      expect(JSON.stringify(error)).not.toContain("OlderCopyFromBackup");
    }
  });

  test("rows written before versions existed (no secretVersion) go to version 1", async () => {
    const connectionId = await createStripe();
    await t.run((ctx) => ctx.db.patch("connections", connectionId, { secretVersion: undefined }));
    await project.admin.mutation(api.connections.updateCredentials, { connectionId, credentials: { secretKey: STRIPE_KEY } });
    expect((await storedConnection(connectionId)).secretVersion).toBe(1);
    expect(await decryptStored(connectionId)).toEqual({ secretKey: STRIPE_KEY });
  });

  test("validates against the connection's own service", async () => {
    const connectionId = await createStripe();
    const call = project.owner.mutation(api.connections.updateCredentials, { connectionId, credentials: GITHUB });
    expect((await errorOf(call)).code).toBe("INVALID_CREDENTIALS");
    expect(await decryptStored(connectionId)).toEqual({ secretKey: STRIPE_KEY });
  });
});

describe("remove", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  async function addMetrics(connectionId: Id<"connections">, count: number) {
    await t.run(async (ctx) => {
      for (let i = 0; i < count; i++) {
        await ctx.db.insert("metrics", { connectionId, projectId: project.projectId, name: "mrr", value: i, timestamp: i });
      }
    });
  }

  function metricsOf(connectionId: Id<"connections">) {
    return t.run((ctx) =>
      ctx.db
        .query("metrics")
        .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connectionId))
        .collect(),
    );
  }

  test("deletes the connection and its metrics, in batches, leaving other connections alone", async () => {
    vi.useFakeTimers();
    const removed = await createStripe();
    const kept = await createStripe();
    await addMetrics(removed, HISTORY_ROWS_PER_BATCH * 2 + 7);
    await addMetrics(kept, 3);
    await project.admin.mutation(api.connections.remove, { connectionId: removed });
    expect(await t.run((ctx) => ctx.db.get("connections", removed))).toBeNull();
    expect((await metricsOf(removed)).length).toBe(HISTORY_ROWS_PER_BATCH + 7);
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await metricsOf(removed)).toEqual([]);
    expect((await metricsOf(kept)).length).toBe(3);
  });

  test("records who created, changed and removed the connection in the audit log", async () => {
    const connectionId = await createStripe();
    await project.admin.mutation(api.connections.updateCredentials, { connectionId, credentials: { secretKey: STRIPE_KEY } });
    await project.admin.mutation(api.connections.remove, { connectionId });
    const entries = await t.run((ctx) =>
      ctx.db
        .query("auditLog")
        .withIndex("by_targetId_and_at", (q) => q.eq("targetId", connectionId))
        .collect(),
    );
    const [alice, bob] = await t.run(async (ctx) => {
      const users = await ctx.db.query("users").collect();
      return ["alice", "bob"].map((name) => users.find((user) => user.name === name)?._id);
    });
    expect(entries.map((entry) => [entry.action, entry.actorId])).toEqual([
      ["connection.created", alice],
      ["connection.credentials_updated", bob],
      ["connection.removed", bob],
    ]);
  });
});
