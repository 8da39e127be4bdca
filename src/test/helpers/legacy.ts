/**
 * The original Dashtray ciphertext format, written independently of the
 * production code so tests can make legacy fixtures:
 * base64(iv ‖ ciphertext ‖ tag), AES-256-GCM, no AAD,
 * key = PBKDF2-SHA256(password = master key + salt, salt, 100,000 iterations).
 */
export async function encryptLegacy(masterKey: string, salt: string, plaintext: string): Promise<string> {
  const encoder = new TextEncoder();
  const baseKey = await crypto.subtle.importKey("raw", encoder.encode(masterKey + salt), "PBKDF2", false, ["deriveKey"]);
  const key = await crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode(salt), iterations: 100_000 },
    baseKey,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt"],
  );
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, encoder.encode(plaintext)));
  const bytes = new Uint8Array(iv.length + sealed.length);
  bytes.set(iv);
  bytes.set(sealed, iv.length);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The legacy policy of a deployment whose upgrade has not retired the original format (storedSecrets/encryption.ts LegacyPolicy). */
export const LEGACY_READ = { legacyRetired: false } as const;
