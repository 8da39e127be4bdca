/**
 * An OAuth grant as stored: the integration's settings and the tokens, one
 * credentials object encrypted in connections.encryptedCredentials (and, on
 * its way to revocation, oauthRevocations), bound to its secretVersion.
 */
import type { Id } from "../_generated/dataModel";
import { appError } from "../errors";
import type { Keyring } from "../lib/keyring";
import { decryptCredentials, encryptCredentials } from "../storedSecrets/encryption";
import type { Credentials } from "../validators";

/**
 * An OAuth connection's decrypted credentials: the integration's settings
 * and the tokens, stored as one object (fields accessToken, refreshToken,
 * accessTokenExpiresAt next to the settings; no setting may use those names).
 */
export interface StoredGrant {
  settings: Credentials;
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: number;
}

/** The credentials object (all strings) a grant is stored as. */
function grantToCredentials(grant: StoredGrant): Credentials {
  return {
    ...grant.settings,
    accessToken: grant.accessToken,
    refreshToken: grant.refreshToken,
    accessTokenExpiresAt: String(grant.accessTokenExpiresAt),
  };
}

/** The grant in decrypted credentials; DECRYPTION_FAILED (no value named) when a token field is missing. */
export function credentialsToGrant(credentials: Credentials): StoredGrant {
  const { accessToken, refreshToken, accessTokenExpiresAt, ...settings } = credentials;
  const expiresAt = Number(accessTokenExpiresAt);
  if (!accessToken || !refreshToken || !Number.isFinite(expiresAt)) {
    throw appError("DECRYPTION_FAILED", "Stored OAuth tokens are incomplete");
  }
  return { settings, accessToken, refreshToken, accessTokenExpiresAt: expiresAt };
}

/** What an integration's fetchMetrics gets: the settings and the access token, never the refresh token. */
export function fetchCredentials(grant: StoredGrant): Credentials {
  return { ...grant.settings, accessToken: grant.accessToken };
}

/**
 * Ciphertext of a grant for the secret version it will be stored at: the
 * v2 format binds the version in the AAD, so a grant the row held before a
 * refresh no longer decrypts there, even if restored.
 */
export function sealGrant(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  secretVersion: number,
  grant: StoredGrant,
): Promise<string> {
  return encryptCredentials(keyring, projectId, connectionId, grantToCredentials(grant), secretVersion);
}

/** The grant in a connection's ciphertext stored at `secretVersion`. */
export async function openGrant(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  secretVersion: number,
  encryptedCredentials: string,
): Promise<StoredGrant> {
  // Only this version writes OAuth grants, always in format v2: the original Dashtray's format is never one.
  const { credentials } = await decryptCredentials(keyring, projectId, connectionId, encryptedCredentials, secretVersion, {
    legacyRetired: true,
  });
  return credentialsToGrant(credentials);
}
