/**
 * The registry of stored secrets (src/convex/storedSecrets/registry.ts):
 * every entry names a field the schema has, the contexts writers use match
 * the purposes it states, the decrypt policy is what each field allows, and
 * the completeness check (helpers/registryCheck.ts, run at the end of the
 * canary and operator-order tests) catches a secret-shaped value in a field
 * the registry does not list.
 */
import { describe, expect, test } from "vitest";
import type { Id } from "../convex/_generated/dataModel";
import { encryptSecret } from "../convex/lib/cipher";
import { Keyring } from "../convex/lib/keyring";
import schema from "../convex/schema";
import {
  aiKeySecretContext,
  authorizationCodeSecretContext,
  codeVerifierSecretContext,
  connectionSecretContext,
  decryptPolicy,
  REGISTRY,
  registered,
} from "../convex/storedSecrets/registry";
import { newBackend } from "./helpers/convex";
import { TEST_MASTER_KEY, TEST_ROOT_SALT } from "./helpers/keys";
import { unregisteredSecretFields } from "./helpers/registryCheck";

describe("the registry of stored secrets", () => {
  test("names only fields the schema declares, each once", () => {
    const seen = new Set<string>();
    for (const { table, field } of REGISTRY) {
      const fields = (schema.tables[table] as unknown as { validator: { fields: Record<string, unknown> } }).validator.fields;
      expect(Object.keys(fields), `${table}.${field}`).toContain(field);
      expect(seen.has(`${table}.${field}`)).toBe(false);
      seen.add(`${table}.${field}`);
    }
    expect(() => registered("connections", "name")).toThrow(/not in the stored-secrets registry/);
  });

  test("the contexts writers and readers use are the purposes it states", () => {
    const p = "p1" as Id<"projects">;
    const c = "c1" as Id<"connections">;
    const u = "u1" as Id<"users">;
    const s = "s1" as Id<"oauthStates">;
    const fill = (table: string, field: string, values: Record<string, string>) =>
      registered(table as never, field).purpose.replace(/<(\w+)>/g, (_all, name: string) => values[name] ?? "?");
    expect(connectionSecretContext(p, c, 3)).toEqual({ salt: p, purpose: fill("connections", "encryptedCredentials", { _id: c }), version: 3 });
    expect(connectionSecretContext(p, c, 3).purpose).toBe(fill("oauthRevocations", "encryptedCredentials", { connectionId: c }));
    expect(aiKeySecretContext(u, undefined)).toEqual({ salt: u, purpose: fill("aiKeys", "encryptedKey", { userId: u }), version: 0 });
    expect(aiKeySecretContext(u, 0).purpose).toBe(fill("users", "aiApiKey", { _id: u }));
    expect(codeVerifierSecretContext(p, s).purpose).toBe(fill("oauthStates", "encryptedCodeVerifier", { _id: s }));
    expect(authorizationCodeSecretContext(p, s).purpose).toBe(fill("oauthStates", "encryptedCode", { _id: s }));
  });

  test("the one decrypt policy: the original format only where it may be and until retired; v2 only above version 0", () => {
    const context = (version: number) => ({ salt: "s", purpose: "x", version });
    const open = { legacyRetired: false };
    expect(decryptPolicy(registered("connections", "encryptedCredentials"), context(0), open)).toEqual({ refuseLegacy: false, requireVersionBinding: false, allowPlaintext: false });
    expect(decryptPolicy(registered("connections", "encryptedCredentials"), context(2), { legacyRetired: true })).toMatchObject({ refuseLegacy: true, requireVersionBinding: true });
    expect(decryptPolicy(registered("oauthStates", "encryptedCode"), context(0), open)).toMatchObject({ refuseLegacy: true });
    expect(decryptPolicy(registered("users", "aiApiKey"), context(0), open)).toMatchObject({ refuseLegacy: false, allowPlaintext: true });
  });

  test("the completeness check reports a ciphertext or hash stored in a field the registry does not list", async () => {
    const t = newBackend();
    const keyring = Keyring.fromSecrets(TEST_MASTER_KEY, [], TEST_ROOT_SALT);
    const ciphertext = await encryptSecret(keyring, "a secret", { salt: "s", purpose: "x", version: 1 });
    await t.run(async (ctx) => {
      const userId = await ctx.db.insert("users", { tokenIdentifier: "t|u", createdAt: 0, name: ciphertext });
      await ctx.db.insert("projects", { name: "a".repeat(64).replace(/a/g, "0"), createdBy: userId, createdAt: 0 });
    });
    expect(await unregisteredSecretFields(t)).toEqual(["projects.name (hash)", "users.name (ciphertext)"]);
  });
});
