/**
 * Rows the storage API (another module) would write, inserted directly and
 * encrypted with storedSecrets/encryption.ts exactly as that API does, so tests of the
 * decrypting actions start from realistic data.
 */
import type { Id } from "../../convex/_generated/dataModel";
import type { Keyring } from "../../convex/lib/keyring";
import { encryptAiKey, encryptCredentials, ensureRootSalt, loadKeyring } from "../../convex/storedSecrets/encryption";
import { credentialHints } from "../../convex/providers/integrations/registry";
import { maskSecret } from "../../convex/lib/mask";
import type { AiProvider, ConnectionStatus, Credentials, MemberRole } from "../../convex/validators";
import { vi } from "vitest";
import type { Backend } from "./convex";
import { identity, newBackend } from "./convex";

/** The deployment's keyring as a function loads it (creating the deployment's root salt if it has none yet). */
export async function deploymentKeyring(t: Backend): Promise<Keyring> {
  return loadKeyring(await t.run((ctx) => ensureRootSalt(ctx.db)));
}

/** A users row for identity(name), as findOrCreateUser would create it. */
export async function seedUser(t: Backend, name: string): Promise<Id<"users">> {
  const { issuer, subject } = identity(name);
  return t.run((ctx) =>
    ctx.db.insert("users", { tokenIdentifier: `${issuer}|${subject}`, name, createdAt: Date.now() }),
  );
}

/** A project with the given members (name → role). */
export async function seedProject(
  t: Backend,
  members: Record<string, MemberRole>,
): Promise<{ projectId: Id<"projects">; userIds: Record<string, Id<"users">> }> {
  const userIds: Record<string, Id<"users">> = {};
  for (const name of Object.keys(members)) userIds[name] = await seedUser(t, name);
  const [creator] = Object.values(userIds);
  if (!creator) throw new Error("a project needs a member");
  const projectId = await t.run(async (ctx) => {
    const id = await ctx.db.insert("projects", { name: "Acme", createdBy: creator, createdAt: Date.now() });
    for (const [name, role] of Object.entries(members)) {
      await ctx.db.insert("projectMembers", { projectId: id, userId: userIds[name]!, role, createdAt: Date.now() });
    }
    return id;
  });
  return { projectId, userIds };
}

/** A connection with encrypted credentials (salt: project id; purpose bound to the row id). */
export async function seedConnection(
  t: Backend,
  projectId: Id<"projects">,
  service: string,
  credentials: Credentials,
  status: ConnectionStatus = "pending",
  keyring?: Keyring,
): Promise<Id<"connections">> {
  const connectionId = await t.run((ctx) =>
    ctx.db.insert("connections", {
      projectId,
      service,
      name: `${service} connection`,
      credentialHints: credentialHints(service, credentials),
      status,
      healthScore: 100,
      createdAt: Date.now(),
      updatedAt: Date.now(),
    }),
  );
  const encryptedCredentials = await encryptCredentials(keyring ?? (await deploymentKeyring(t)), projectId, connectionId, credentials, 1);
  await t.run((ctx) => ctx.db.patch("connections", connectionId, { encryptedCredentials, secretVersion: 1 }));
  return connectionId;
}

/** A user's AI key, encrypted with the user id as salt. */
export async function seedAiKey(t: Backend, userId: Id<"users">, provider: AiProvider, apiKey: string): Promise<Id<"aiKeys">> {
  const encryptedKey = await encryptAiKey(await deploymentKeyring(t), userId, apiKey, 1);
  return t.run((ctx) =>
    ctx.db.insert("aiKeys", {
      userId,
      provider,
      encryptedKey,
      secretVersion: 1,
      hint: maskSecret(apiKey),
      createdAt: Date.now(),
      updatedAt: Date.now(),
    }),
  );
}

/**
 * A fresh backend at fake time `start` (Date only; tests move it with
 * vi.setSystemTime) holding one owner's project and one Stripe connection,
 * for the background jobs' tests. Call vi.useRealTimers() after.
 */
export async function seedJobFixture(start: number, secretKey: string) {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(start);
  const t = newBackend();
  const { projectId } = await seedProject(t, { alice: "owner" });
  const connectionId = await seedConnection(t, projectId, "stripe", { secretKey });
  return { t, projectId, connectionId };
}
