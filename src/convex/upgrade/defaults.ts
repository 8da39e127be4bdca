/**
 * What readers show for rows the original Dashtray wrote, until the upgrade
 * job (upgrade.ts) stores the missing fields. Every reader of a field the
 * original did not write goes through here, so the dashboard sees the same
 * thing everywhere, and these defaults can go when the schema is narrowed
 * (docs/upgrade.md). It imports the integration registry (for names and
 * credential fields): modules on the AI key's path (ai.ts, aiKeys.ts) do not
 * import it (src/test/architecture/imports.test.ts).
 */
import type { Doc } from "../_generated/dataModel";
import { UNKNOWN_HINT } from "../lib/mask";
import { findIntegration } from "../providers/integrations/registry";

export { UNKNOWN_HINT };

/** A connection's name; rows of the original have none: the integration's display name ("Stripe"), or its id. */
export function connectionNameOf(connection: Doc<"connections">): string {
  return connection.name ?? findIntegration(connection.service)?.name ?? connection.service;
}

/**
 * A connection's masked hints; rows of the original have none (computing
 * them would need the plaintext): UNKNOWN_HINT for every credential field
 * of the integration (none for an unknown service).
 */
export function connectionHintsOf(connection: Doc<"connections">): Record<string, string> {
  if (connection.credentialHints !== undefined) return connection.credentialHints;
  const fields = findIntegration(connection.service)?.credentialFields ?? [];
  return Object.fromEntries(fields.map((field) => [field.name, UNKNOWN_HINT]));
}

/** An API key's display prefix; rows of the original have its 8-character keyPrefix instead. */
export function apiKeyPrefixOf(apiKey: Doc<"apiKeys">): string {
  return apiKey.prefix ?? apiKey.keyPrefix ?? UNKNOWN_HINT;
}
