import { rateLimitTables } from "convex-helpers/server/rateLimit";
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
import {
  aiProviderValidator,
  keyIdOrderValidator,
  auditEntryValidator,
  connectionStatusValidator,
  invitationStateValidator,
  memberRoleValidator,
} from "./validators";
import { failureFields, jobFields } from "./reencryption/validators";

/**
 * Secrets are never stored in the clear: connection credentials and AI keys
 * are ciphertext (see docs/encryption.md), platform API keys are SHA-256
 * hashes. Fields marked "legacy" exist only so the rotation job can migrate
 * data written by older versions of Dashtray; fields marked "legacy (original
 * Dashtray)" exist, or are optional, only because the original Dashtray wrote
 * rows without them: the upgrade job (upgrade.ts, docs/upgrade.md) brings
 * those rows to the current shape, after which the schema can be narrowed.
 */
export default defineSchema({
  /** Token buckets of access/rateLimits.ts (convex-helpers). */
  ...rateLimitTables,

  users: defineTable({
    /** Stable identity from the auth provider (ctx.auth.getUserIdentity().tokenIdentifier). */
    tokenIdentifier: v.string(),
    name: v.optional(v.string()),
    email: v.optional(v.string()),
    createdAt: v.number(),
    /**
     * legacy (original Dashtray): the user's AI provider key as the original stored it, ciphertext in
     * the original format (salt: user id). Read by insights while the user has no aiKeys row; the
     * upgrade job moves it to aiKeys (format v2) and removes it together with aiProvider.
     */
    aiApiKey: v.optional(v.string()),
    /** legacy (original Dashtray): the provider of aiApiKey. */
    aiProvider: v.optional(aiProviderValidator),
    /** legacy (original Dashtray): when the original last changed the row; kept, never written. */
    updatedAt: v.optional(v.number()),
  })
    .index("by_tokenIdentifier", ["tokenIdentifier"]),

  projects: defineTable({
    name: v.string(),
    /** Who created the project: its owner for the per-user caps and the sync cron's fair shares (access/caps.ts). */
    createdBy: v.id("users"),
    createdAt: v.number(),
  }).index("by_createdBy", ["createdBy"]),

  projectMembers: defineTable({
    projectId: v.id("projects"),
    userId: v.id("users"),
    role: memberRoleValidator,
    createdAt: v.number(),
  })
    .index("by_projectId_and_userId", ["projectId", "userId"])
    .index("by_userId", ["userId"]),

  /**
   * An owner's invitation of an email address to a project with a role. The
   * invitee accepts it signed in with that verified address (invitations.ts).
   */
  invitations: defineTable({
    projectId: v.id("projects"),
    /** The invited address as access/input.ts normalizeEmail gives it (printable ASCII). */
    email: v.string(),
    role: memberRoleValidator,
    state: invitationStateValidator,
    invitedBy: v.id("users"),
    createdAt: v.number(),
    /** After this, a pending invitation can no longer be accepted. */
    expiresAt: v.number(),
    /** When it was accepted or revoked, and by whom. */
    closedAt: v.optional(v.number()),
    closedBy: v.optional(v.id("users")),
  })
    .index("by_projectId_and_state", ["projectId", "state"])
    .index("by_email_and_state", ["email", "state"]),

  connections: defineTable({
    projectId: v.id("projects"),
    /** Integration id from the registry in src/convex/integrations ("stripe", "github", ...). */
    service: v.string(),
    /**
     * Shown in the dashboard. legacy (original Dashtray): absent on its rows, which read as the
     * integration's display name until the upgrade job stores that name.
     */
    name: v.optional(v.string()),
    /**
     * Ciphertext of the JSON credentials object; salt: project id; purpose: connections/<id>/credentials.
     * For OAuth integrations the object holds the settings and the tokens (access, refresh, expiry), so
     * a refresh replaces both tokens in one write and the rotation job covers them like any credentials.
     */
    encryptedCredentials: v.optional(v.string()),
    /** Bumped each time the credentials are replaced; bound into the ciphertext (format v2). Absent on old rows: 0. */
    secretVersion: v.optional(v.number()),
    /**
     * An OAuth token refresh in flight (oauth/tokenStore.ts): claimed in a mutation by the one sync that calls the
     * provider; others wait for the secretVersion to change. Expires so a dead refresher blocks no one.
     */
    refreshLease: v.optional(v.object({ leaseId: v.string(), expiresAt: v.number() })),
    /**
     * OAuth connections: keyed hash of the provider account whose grant the row holds (oauth/accounts.ts,
     * storedSecrets/encryption.ts oauthAccountHash), never the account id. Absent: unknown (grants stored
     * before it was recorded, or an answer that named no account), treated as possibly shared.
     */
    oauthAccountHash: v.optional(v.string()),
    /** Legacy: plaintext credentials written by older versions; the rotation job encrypts and removes them. */
    credentials: v.optional(v.record(v.string(), v.string())),
    /**
     * Masked hint per credential field, computed when the credentials are written. legacy (original
     * Dashtray): absent on its rows (hints need the plaintext), which read as "…" per field of the
     * integration until the upgrade job decrypts them and stores the hints.
     */
    credentialHints: v.optional(v.record(v.string(), v.string())),
    status: connectionStatusValidator,
    /** 0–100: how well recent syncs went. */
    healthScore: v.number(),
    /** Safe, secret-free description of the last sync failure. */
    lastError: v.optional(v.string()),
    lastSyncedAt: v.optional(v.number()),
    /**
     * When the cron syncs this connection next (sync/schedule.ts). Absent on rows written before
     * scheduling by due time existed: absent sorts first in the index, so such rows are due.
     * NOT_SCHEDULED (sync/policy.ts) on connections that wait for the user (needs_reauth).
     */
    nextSyncAt: v.optional(v.number()),
    /** Syncs that failed in a row since the last success or credentials write (sync/policy.ts backoff). */
    syncFailures: v.optional(v.number()),
    createdBy: v.optional(v.id("users")),
    createdAt: v.number(),
    updatedAt: v.number(),
  })
    .index("by_projectId", ["projectId"])
    /** Due connections first: the sync cron reads this index up to now. */
    .index("by_nextSyncAt", ["nextSyncAt"])
    /** Other grants of the same provider account (or of an unknown one): revoking would end theirs too. */
    .index("by_service_and_oauthAccountHash", ["service", "oauthAccountHash"]),

  /**
   * OAuth authorization flows started by connections.startOAuth and not yet
   * finished: single use (the callback takes the state, finishOAuth deletes
   * the row), expiring 10 minutes after the start. The state is stored only as a SHA-256 hash; the PKCE verifier
   * only as ciphertext (salt: project id; purpose: oauthStates/<id>/codeVerifier).
   */
  oauthStates: defineTable({
    stateHash: v.string(),
    userId: v.id("users"),
    projectId: v.id("projects"),
    service: v.string(),
    /** Set when the flow reconnects an existing connection (e.g. one in needs_reauth). */
    connectionId: v.optional(v.id("connections")),
    name: v.string(),
    /** The integration's non-secret settings (e.g. GA4 property id). */
    settings: v.record(v.string(), v.string()),
    encryptedCodeVerifier: v.optional(v.string()),
    /**
     * Set by the callback: the authorization code, encrypted (purpose
     * oauthStates/<id>/code), kept for connections.finishOAuth. From then on
     * stateHash is the SHA-256 of the flow's completion token (sent only to
     * the browser that came back from the provider), not of the state.
     */
    encryptedCode: v.optional(v.string()),
    expiresAt: v.number(),
    createdAt: v.number(),
  })
    .index("by_stateHash", ["stateHash"])
    .index("by_projectId", ["projectId"]),

  /**
   * Tokens of removed OAuth connections waiting for their revocation at the
   * provider: the ciphertext moved here from the deleted row (same salt,
   * purpose and version), deleted by the revoking action or, at the latest,
   * by a backstop a few minutes later.
   */
  oauthRevocations: defineTable({
    projectId: v.id("projects"),
    connectionId: v.id("connections"),
    service: v.string(),
    secretVersion: v.number(),
    encryptedCredentials: v.string(),
    /** The grant's account (connections.oauthAccountHash), checked again when the revocation runs. */
    oauthAccountHash: v.optional(v.string()),
    createdAt: v.number(),
  }),

  aiKeys: defineTable({
    userId: v.id("users"),
    provider: aiProviderValidator,
    /** Ciphertext of the provider key; salt: user id; purpose: aiKeys/<userId>/apiKey. */
    encryptedKey: v.optional(v.string()),
    /** Bumped each time the key is replaced; bound into the ciphertext (format v2). Absent on old rows: 0. */
    secretVersion: v.optional(v.number()),
    /** Legacy: plaintext key written by older versions; the rotation job encrypts and removes it. */
    apiKey: v.optional(v.string()),
    /** Masked hint of the key; "" on a removed key. */
    hint: v.string(),
    /**
     * Set when the user removed their key: the row stays, without any ciphertext, as a tombstone
     * keeping secretVersion, so a key set later gets a higher version and no ciphertext of an
     * earlier key (same purpose, aiKeys/<userId>/apiKey) ever decrypts in this row again.
     */
    removedAt: v.optional(v.number()),
    createdAt: v.number(),
    updatedAt: v.number(),
  }).index("by_userId", ["userId"]),

  apiKeys: defineTable({
    projectId: v.id("projects"),
    name: v.string(),
    /**
     * SHA-256 hex of the key (keyHashAlgorithm says so). Legacy rows without keyHashAlgorithm may
     * hold the plaintext key here until the upgrade or rotation job hashes it.
     */
    keyHash: v.string(),
    /**
     * What keyHash is: "sha256", set on every row written since, and by the upgrade job on older
     * rows. legacy (original Dashtray): absent on rows written before it existed.
     */
    keyHashAlgorithm: v.optional(v.literal("sha256")),
    /**
     * First characters of the key, shown in the dashboard ("dt_live_AbCd"). legacy (original
     * Dashtray): absent on its rows, which show keyPrefix until the upgrade job copies it here.
     */
    prefix: v.optional(v.string()),
    /** legacy (original Dashtray): the key's first 8 characters; the upgrade job moves it to prefix. */
    keyPrefix: v.optional(v.string()),
    createdBy: v.optional(v.id("users")),
    createdAt: v.number(),
    lastUsedAt: v.optional(v.number()),
    revokedAt: v.optional(v.number()),
  })
    .index("by_keyHash", ["keyHash"])
    /** The rotation job walks keys in (projectId, _creationTime) order: the index below sorts by revokedAt. */
    // eslint-disable-next-line @convex-dev/no-duplicate-indexes
    .index("by_projectId", ["projectId"])
    /** Live keys of a project (revokedAt unset sorts first), and of one creator: listing, caps, member removal. */
    .index("by_projectId_and_revokedAt_and_createdBy", ["projectId", "revokedAt", "createdBy"]),

  metrics: defineTable({
    connectionId: v.id("connections"),
    projectId: v.id("projects"),
    name: v.string(),
    value: v.number(),
    timestamp: v.number(),
  })
    .index("by_connectionId_and_timestamp", ["connectionId", "timestamp"])
    .index("by_projectId_and_timestamp", ["projectId", "timestamp"]),

  /**
   * Metric history at chart resolution (metricHistory/rollups.ts): per connection, metric and UTC hour or
   * day, the last value stored in that bucket and the range of values. Written with the raw points
   * by each sync, trimmed by retention like them, read by metrics.series instead of raw points.
   */
  metricRollups: defineTable({
    connectionId: v.id("connections"),
    projectId: v.id("projects"),
    name: v.string(),
    resolution: v.union(v.literal("hour"), v.literal("day")),
    /** Start of the bucket (ms since the epoch, UTC). */
    start: v.number(),
    /** The value of the newest point in the bucket, and its time. */
    last: v.number(),
    lastAt: v.number(),
    min: v.number(),
    max: v.number(),
  })
    .index("by_connectionId_and_name_and_resolution_and_start", ["connectionId", "name", "resolution", "start"])
    .index("by_projectId", ["projectId"])
    /** Retention trims rollups by bucket start (backfilled ones were written long after their bucket). */
    .index("by_start", ["start"]),

  insights: defineTable({
    projectId: v.id("projects"),
    userId: v.id("users"),
    provider: aiProviderValidator,
    model: v.string(),
    text: v.string(),
    createdAt: v.number(),
  }).index("by_projectId", ["projectId"]),

  /** Who did what to which secret, and when. Never the secret itself. */
  auditLog: defineTable({
    ...auditEntryValidator.fields,
    at: v.number(),
  })
    .index("by_projectId_and_at", ["projectId", "at"])
    /** A user's own entries (AI keys), for auditLog.listMine. */
    .index("by_ownerId_and_at", ["ownerId", "at"])
    .index("by_targetId_and_at", ["targetId", "at"]),

  /**
   * Deployment-wide encryption settings: one row, created by the first
   * mutation that encrypts (storedSecrets/encryption.ts). rootSalt salts every master key's
   * PBKDF2 root (docs/encryption.md); it is not secret, and travels with the data.
   */
  encryptionSettings: defineTable({
    /** base64url of 32 random bytes. */
    rootSalt: v.string(),
    createdAt: v.number(),
    /**
     * When a completed upgrade job found no value in the original Dashtray format left. From then
     * on every decrypting path refuses that format (LEGACY_FORMAT_RETIRED): it binds nothing to
     * its row, so a legacy value copied into another row would otherwise decrypt there.
     */
    legacyRetiredAt: v.optional(v.number()),
    /** Key ids recorded when the last rotation job started: hints for decrypting calls (validators.ts keyIdOrderValidator). */
    keyIdOrder: v.optional(keyIdOrderValidator),
  }),

  /** Master-key rotation jobs (see docs/key-rotation.md); the newest one is the only one that can be running. */
  /**
   * Re-encryption jobs (reencryption/job.ts: master-key rotation and the upgrade from the original Dashtray,
   * one job); the newest one is the only one that can be running. Earlier versions kept their jobs in
   * keyRotationJobs, keyRotationFailures, upgradeJobs and upgradeFailures: no longer declared or read,
   * they can be cleared once no job of that version runs (docs/key-rotation.md, "Deploying this version").
   */
  reencryptionJobs: defineTable(jobFields),

  /** Rows a job left untouched, kept apart so a job document stays small. */
  reencryptionFailures: defineTable(failureFields).index("by_jobId", ["jobId"]),
});
