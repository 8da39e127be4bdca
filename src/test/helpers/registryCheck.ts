/**
 * The stored-secrets registry's completeness check: every value stored
 * anywhere that looks like a secret's ciphertext (formats v2, v1, the
 * original's) or hash (SHA-256 hex) must sit in a field the registry
 * (src/convex/storedSecrets/registry.ts) lists. Tests that write a
 * representative session of data call it at their end.
 */
import { describeCiphertext } from "../../convex/lib/cipher";
import schema from "../../convex/schema";
import { REGISTRY } from "../../convex/storedSecrets/registry";
import type { Backend } from "./convex";

/** Fields whose values look like ciphertext or hashes but are neither secrets nor derived from one, with why. */
const NOT_SECRETS: Record<string, string> = {
  "encryptionSettings.rootSalt": "the deployment's root salt: random, public by design (docs/encryption.md)",
};

/** What a stored string looks like: "ciphertext", "hash", or null (neither). */
function secretShape(value: string): "ciphertext" | "hash" | null {
  if (/^[0-9a-f]{64}$/.test(value)) return "hash";
  const format = describeCiphertext(value).format;
  if (format === "v2" || format === "v1" || format === "legacy" || (format === "invalid" && value.startsWith("dtenc:"))) return "ciphertext";
  return null;
}

/** "table.field (shape)" for every stored value shaped like a secret in a field the registry does not list. */
export async function unregisteredSecretFields(t: Backend): Promise<string[]> {
  const registered = new Set(REGISTRY.map(({ table, field }) => `${table}.${field}`));
  const found = new Set<string>();
  const walk = (field: string, value: unknown) => {
    if (typeof value === "string") {
      const shape = secretShape(value);
      if (shape && !registered.has(field) && !(field in NOT_SECRETS)) found.add(`${field} (${shape})`);
    } else if (value && typeof value === "object") {
      for (const inner of Object.values(value)) walk(field, inner);
    }
  };
  await t.run(async (ctx) => {
    for (const table of Object.keys(schema.tables) as (keyof typeof schema.tables)[]) {
      for (const doc of await ctx.db.query(table).collect()) {
        for (const [field, value] of Object.entries(doc)) if (field !== "_id") walk(`${table}.${field}`, value);
      }
    }
  });
  return [...found].sort();
}
