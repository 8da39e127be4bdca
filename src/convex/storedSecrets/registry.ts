/**
 * The one account of every stored secret: each field that can hold a
 * secret, its ciphertext or its hash, in every version of Dashtray that
 * wrote it (the original's included), with its salt, purpose, version
 * field and the formats that may be found there. Writers and readers
 * (storedSecrets/encryption.ts), the decrypt policy below, the re-encryption job and its
 * inventory (reencryption/) all read this list; a test fails when data the
 * suite writes holds a ciphertext- or hash-shaped value in a field missing
 * here (src/test/registry.test.ts).
 *
 * Formats: "v2", "v1" and "legacy" (the original Dashtray's) are
 * ciphertext (lib/cipher.ts); "plaintext" is a secret stored in the clear
 * by an older version; "sha256" is a lowercase hex hash.
 */
import type { Doc, Id, TableNames } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";
import { describeCiphertext, type DecryptOptions, type SecretContext } from "../lib/cipher";

export type StoredFormat = "v2" | "v1" | "legacy" | "plaintext" | "sha256";

export interface RegisteredField {
  table: TableNames;
  field: string;
  /** What the salt is (the field holding it). */
  salt: string;
  /** The purpose bound into the ciphertext, with <field> placeholders. */
  purpose: string;
  /** The field holding the secret's version, or null (version 0). */
  versionField: string | null;
  formats: readonly StoredFormat[];
  /**
   * "job": the re-encryption job rewrites it; "expires": deleted within minutes, so never rewritten;
   * "kept": a hash keyed with the root salt, which no master-key rotation changes.
   */
  lifetime: "job" | "expires" | "kept";
  what: string;
}

/**
 * What the HMAC of an OAuth grant's account id is bound to, before the
 * service and the id: "dashtray/oauth-account/v1/<service>\u0000<id>".
 */
export const OAUTH_ACCOUNT_HASH_PURPOSE = "dashtray/oauth-account/v1/";

export const REGISTRY: readonly RegisteredField[] = [
  {
    table: "connections",
    field: "encryptedCredentials",
    salt: "projectId",
    purpose: "connections/<_id>/credentials",
    versionField: "secretVersion",
    formats: ["v2", "v1", "legacy"],
    lifetime: "job",
    what: "a connection's credentials (JSON object; OAuth tokens included)",
  },
  {
    table: "connections",
    field: "credentials",
    salt: "projectId",
    purpose: "connections/<_id>/credentials",
    versionField: "secretVersion",
    formats: ["plaintext"],
    lifetime: "job",
    what: "plaintext credentials of older versions; the job encrypts them into encryptedCredentials",
  },
  {
    table: "users",
    field: "aiApiKey",
    salt: "_id",
    purpose: "aiKeys/<_id>/apiKey",
    versionField: null,
    formats: ["legacy", "plaintext"],
    lifetime: "job",
    what: "the original Dashtray's AI key on the users row; the job moves it to aiKeys",
  },
  {
    table: "aiKeys",
    field: "encryptedKey",
    salt: "userId",
    purpose: "aiKeys/<userId>/apiKey",
    versionField: "secretVersion",
    formats: ["v2", "v1", "legacy"],
    lifetime: "job",
    what: "a user's AI provider key",
  },
  {
    table: "aiKeys",
    field: "apiKey",
    salt: "userId",
    purpose: "aiKeys/<userId>/apiKey",
    versionField: "secretVersion",
    formats: ["plaintext"],
    lifetime: "job",
    what: "plaintext AI key of older versions; the job encrypts it into encryptedKey",
  },
  {
    table: "apiKeys",
    field: "keyHash",
    salt: "",
    purpose: "",
    versionField: null,
    formats: ["sha256", "plaintext"],
    lifetime: "job",
    what: "a platform API key's hash; unhashed on rows of the original without keyHashAlgorithm (the job hashes them)",
  },
  {
    table: "oauthStates",
    field: "stateHash",
    salt: "",
    purpose: "",
    versionField: null,
    formats: ["sha256"],
    lifetime: "expires",
    what: "hash of a pending OAuth flow's state, then of its completion token",
  },
  {
    table: "oauthStates",
    field: "encryptedCodeVerifier",
    salt: "projectId",
    purpose: "oauthStates/<_id>/codeVerifier",
    versionField: null,
    formats: ["v2"],
    lifetime: "expires",
    what: "a pending OAuth flow's PKCE verifier (10 minutes)",
  },
  {
    table: "oauthStates",
    field: "encryptedCode",
    salt: "projectId",
    purpose: "oauthStates/<_id>/code",
    versionField: null,
    formats: ["v2"],
    lifetime: "expires",
    what: "an authorization code waiting for connections.finishOAuth (10 minutes)",
  },
  {
    table: "oauthRevocations",
    field: "encryptedCredentials",
    salt: "projectId",
    purpose: "connections/<connectionId>/credentials",
    versionField: "secretVersion",
    formats: ["v2", "v1", "legacy"],
    lifetime: "expires",
    what: "a removed connection's credentials moved here until revoked (minutes)",
  },
  {
    table: "connections",
    field: "oauthAccountHash",
    salt: "encryptionSettings.rootSalt (the HMAC key)",
    purpose: OAUTH_ACCOUNT_HASH_PURPOSE + "<service>",
    versionField: null,
    formats: ["sha256"],
    lifetime: "kept",
    what: "HMAC-SHA256 of the provider account id (Google's OpenID `sub`) of an OAuth grant; never the id",
  },
  {
    table: "oauthRevocations",
    field: "oauthAccountHash",
    salt: "encryptionSettings.rootSalt (the HMAC key)",
    purpose: OAUTH_ACCOUNT_HASH_PURPOSE + "<service>",
    versionField: null,
    formats: ["sha256"],
    lifetime: "expires",
    what: "the account hash of a grant waiting to be revoked (minutes)",
  },
];

/** The registry entry of (table, field); throws for a field that is not registered (a programming error). */
export function registered(table: TableNames, field: string): RegisteredField {
  const entry = REGISTRY.find((candidate) => candidate.table === table && candidate.field === field);
  if (!entry) throw new Error(`${table}.${field} is not in the stored-secrets registry`);
  return entry;
}

/** Tables holding at least one registered field, in registry order. */
export const SECRET_TABLES: readonly TableNames[] = [...new Set(REGISTRY.map(({ table }) => table))];

/** What a decrypting path must know besides the ciphertext: whether the original format is still read. */
export interface LegacyPolicy {
  /** True once a job retired the original Dashtray format (encryptionSettings.legacyRetiredAt). */
  legacyRetired: boolean;
}

/**
 * The decrypt policy, decided here once for every reader and the job:
 * - the original format is read only in fields where it may appear, and
 *   only until a job retired it (it binds nothing to its row);
 * - where the row's version is above 0 only format v2 was ever written, so
 *   a v1 or original-format value there is a restored copy: refused;
 * - plaintext is accepted only where a field may hold it (users.aiApiKey).
 */
export function decryptPolicy(entry: RegisteredField, context: SecretContext, policy: LegacyPolicy): DecryptOptions {
  return {
    refuseLegacy: policy.legacyRetired || !entry.formats.includes("legacy"),
    requireVersionBinding: context.version > 0,
    allowPlaintext: entry.formats.includes("plaintext") && entry.formats.includes("legacy"),
  };
}

/** Salt, purpose and version of a connection's credentials (also while they wait in oauthRevocations). */
export function connectionSecretContext(
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  secretVersion: number | undefined,
): SecretContext {
  return { salt: projectId, purpose: `connections/${connectionId}/credentials`, version: secretVersion ?? 0 };
}

/** Salt, purpose and version of a user's AI provider key (users.aiApiKey: version 0). */
export function aiKeySecretContext(userId: Id<"users">, secretVersion: number | undefined): SecretContext {
  return { salt: userId, purpose: `aiKeys/${userId}/apiKey`, version: secretVersion ?? 0 };
}

/** Salt, purpose and version of a pending OAuth flow's PKCE code verifier (written once: version 0). */
export function codeVerifierSecretContext(projectId: Id<"projects">, stateId: Id<"oauthStates">): SecretContext {
  return { salt: projectId, purpose: `oauthStates/${stateId}/codeVerifier`, version: 0 };
}

/** Salt, purpose and version of the authorization code a flow's callback received (written once: version 0). */
export function authorizationCodeSecretContext(projectId: Id<"projects">, stateId: Id<"oauthStates">): SecretContext {
  return { salt: projectId, purpose: `oauthStates/${stateId}/code`, version: 0 };
}

/**
 * Which derivation reading a connection's stored credentials needs, from the
 * ciphertext's header alone (the sync cron groups due connections by it: one
 * PBKDF2 per group, sync/policy.ts): format
 * v2 under one master key ("v2:<key id>", any project); v1 and original
 * format values derive per project ("v1:<key id>:<project>",
 * "legacy:<project>"); values that need no derivation (none stored,
 * unreadable) go with the v2 ones.
 */
export function derivationGroupOf(projectId: Id<"projects">, encryptedCredentials: string | undefined): string {
  if (!encryptedCredentials) return "none";
  const described = describeCiphertext(encryptedCredentials);
  switch (described.format) {
    case "v2":
      return `v2:${described.keyId}`;
    case "v1":
      return `v1:${described.keyId}:${projectId}`;
    case "legacy":
      return `legacy:${projectId}`;
    default:
      return "none";
  }
}

/** The user's aiKeys row (live or removed), if they ever had one. */
export function findAiKeyRow(db: QueryCtx["db"], userId: Id<"users">): Promise<Doc<"aiKeys"> | null> {
  return db
    .query("aiKeys")
    .withIndex("by_userId", (q) => q.eq("userId", userId))
    .unique();
}

/** Whether an aiKeys row holds a key (encrypted, or legacy plaintext): not removed, not empty. */
export function holdsKey(row: Doc<"aiKeys">): boolean {
  return row.removedAt === undefined && (row.encryptedKey !== undefined || row.apiKey !== undefined);
}

/** Every key starts with this, so leaked keys are easy to recognise and scan for. */
export const API_KEY_PREFIX = "dt_live_";
/** Characters of the key kept for display: the prefix and 4 random characters. */
export const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 4;
