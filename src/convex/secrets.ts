/**
 * Where each secret's salt and purpose come from, in one place, so that
 * writers, decrypting actions and the rotation job always agree:
 * - connection credentials: salt = project id, purpose = "connections/<id>/credentials"
 * - AI provider keys: salt = user id, purpose = "aiKeys/<userId>/apiKey"
 * - OAuth PKCE code verifiers: salt = project id, purpose = "oauthStates/<stateId>/codeVerifier"
 *   (OAuth tokens are connection credentials: see connections.encryptedCredentials)
 * The master keys come from MASTER_ENCRYPTION_KEY and OLD_MASTER_KEY.
 * Crypto failures leave here as client-safe ConvexErrors (see errors.ts).
 */
import { env } from "./_generated/server";
import type { Id } from "./_generated/dataModel";
import { appError, toAppError } from "./errors";
import { decryptSecret, encryptSecret, type DecryptedSecret, type SecretContext } from "./lib/cipher";
import { Keyring } from "./lib/keyring";
import type { Credentials } from "./validators";

async function mapCryptoErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    return toAppError(error);
  }
}

/** The deployment's keyring; a missing or short master key is ENCRYPTION_UNAVAILABLE. */
export function loadKeyring(): Promise<Keyring> {
  return mapCryptoErrors(() =>
    Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: env.MASTER_ENCRYPTION_KEY, OLD_MASTER_KEY: env.OLD_MASTER_KEY }),
  );
}

/** Salt and purpose of a connection's credentials. */
export function connectionSecretContext(projectId: Id<"projects">, connectionId: Id<"connections">): SecretContext {
  return { salt: projectId, purpose: `connections/${connectionId}/credentials` };
}

/** Salt and purpose of a user's AI provider key. */
export function aiKeySecretContext(userId: Id<"users">): SecretContext {
  return { salt: userId, purpose: `aiKeys/${userId}/apiKey` };
}

/** Salt and purpose of the PKCE code verifier of a pending OAuth flow. */
export function codeVerifierSecretContext(projectId: Id<"projects">, stateId: Id<"oauthStates">): SecretContext {
  return { salt: projectId, purpose: `oauthStates/${stateId}/codeVerifier` };
}

/** Ciphertext of a pending OAuth flow's PKCE code verifier. */
export function encryptCodeVerifier(
  keyring: Keyring,
  projectId: Id<"projects">,
  stateId: Id<"oauthStates">,
  codeVerifier: string,
): Promise<string> {
  return mapCryptoErrors(() => encryptSecret(keyring, codeVerifier, codeVerifierSecretContext(projectId, stateId)));
}

/** A pending OAuth flow's PKCE code verifier from its ciphertext. */
export async function decryptCodeVerifier(
  keyring: Keyring,
  projectId: Id<"projects">,
  stateId: Id<"oauthStates">,
  encryptedCodeVerifier: string,
): Promise<string> {
  const context = codeVerifierSecretContext(projectId, stateId);
  return (await mapCryptoErrors(() => decryptSecret(keyring, encryptedCodeVerifier, context))).plaintext;
}

/** Ciphertext of a connection's credentials under the current master key. */
export function encryptCredentials(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  credentials: Credentials,
): Promise<string> {
  const context = connectionSecretContext(projectId, connectionId);
  return mapCryptoErrors(() => encryptSecret(keyring, JSON.stringify(credentials), context));
}

/** The credentials a connection's ciphertext holds (any configured key, current or legacy format). */
export async function decryptCredentials(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  encryptedCredentials: string,
): Promise<{ credentials: Credentials; secret: DecryptedSecret }> {
  const context = connectionSecretContext(projectId, connectionId);
  const secret = await mapCryptoErrors(() => decryptSecret(keyring, encryptedCredentials, context));
  return { credentials: parseCredentials(secret.plaintext), secret };
}

/** Parses decrypted credentials JSON, refusing anything but an object of strings. */
export function parseCredentials(plaintext: string): Credentials {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(plaintext);
  } catch {
    // Reported below; the plaintext itself must never reach an error message.
  }
  const isObjectOfStrings =
    typeof parsed === "object" &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every((value) => typeof value === "string");
  if (!isObjectOfStrings) throw appError("DECRYPTION_FAILED", "decrypted credentials are not an object of strings");
  return parsed as Credentials;
}

/** Ciphertext of a user's AI provider key under the current master key. */
export function encryptAiKey(keyring: Keyring, userId: Id<"users">, apiKey: string): Promise<string> {
  return mapCryptoErrors(() => encryptSecret(keyring, apiKey, aiKeySecretContext(userId)));
}

/** A user's AI provider key from its ciphertext. */
export function decryptAiKey(keyring: Keyring, userId: Id<"users">, encryptedKey: string): Promise<DecryptedSecret> {
  return mapCryptoErrors(() => decryptSecret(keyring, encryptedKey, aiKeySecretContext(userId)));
}
