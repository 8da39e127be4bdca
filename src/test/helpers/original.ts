/**
 * Documents exactly as the original Dashtray wrote them (as documented in
 * its encryption system description), made independently of the production
 * code: its ciphertext (the node:crypto implementation in
 * independent/dashtrayFormats.ts), its SHA-256 hex hashing, its API key
 * shape, and its document fields. Inserted directly, as they would be
 * found in a deployment being upgraded.
 */
import type { Id } from "../../convex/_generated/dataModel";
import type { Backend } from "./convex";
import { encryptLegacy } from "../independent/dashtrayFormats";

/** SHA-256 of the UTF-8 bytes, lowercase hex, as the original's hash() returned it. */
export async function originalHash(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A connection as the original's connections.create inserted it: no name, hints, creator or version. */
export async function originalConnection(
  t: Backend,
  masterKey: string,
  projectId: Id<"projects">,
  service: string,
  credentials: Record<string, string>,
): Promise<{ connectionId: Id<"connections">; encryptedCredentials: string }> {
  // The original used the project id as the salt, and no associated data.
  const encryptedCredentials = encryptLegacy(masterKey, projectId, JSON.stringify(credentials));
  const now = Date.now();
  const connectionId = await t.run((ctx) =>
    ctx.db.insert("connections", {
      projectId,
      service,
      encryptedCredentials,
      status: "active",
      healthScore: 100,
      createdAt: now,
      updatedAt: now,
    }),
  );
  return { connectionId, encryptedCredentials };
}

/** A user's AI key as the original's updateAIKey patched it onto the users row (salt: user id). */
export async function originalAiKey(
  t: Backend,
  masterKey: string,
  userId: Id<"users">,
  provider: "openai" | "anthropic",
  apiKey: string,
): Promise<string> {
  const aiApiKey = encryptLegacy(masterKey, userId, apiKey);
  await t.run((ctx) => ctx.db.patch("users", userId, { aiApiKey, aiProvider: provider, updatedAt: Date.now() }));
  return aiApiKey;
}

/** A platform API key as the original's apiKeys.create inserted it; returns the key, shown once. */
export async function originalApiKey(
  t: Backend,
  projectId: Id<"projects">,
  createdBy: Id<"users">,
  name: string,
): Promise<{ apiKeyId: Id<"apiKeys">; apiKey: string }> {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(24)), (byte) => byte.toString(16).padStart(2, "0")).join("");
  const apiKey = `pp_live_${random}`;
  const keyHash = await originalHash(apiKey);
  const apiKeyId = await t.run((ctx) =>
    ctx.db.insert("apiKeys", { projectId, name, keyHash, keyPrefix: apiKey.substring(0, 8), createdBy, createdAt: Date.now() }),
  );
  return { apiKeyId, apiKey };
}
