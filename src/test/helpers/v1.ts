/**
 * Format v1 (read, no longer written), written independently of the
 * production code so tests can make v1 fixtures (docs/encryption.md):
 * dtenc:v1:<keyId>:<iv>:<ciphertext‖tag>, AES-256-GCM,
 * key = PBKDF2-SHA256(master key, salt, 100,000), keyId = PBKDF2-SHA256(master key,
 * "dashtray/master-key-id/v1", 100,000, 8 bytes), AAD = "dtenc:v1:" + keyId + ":" + purpose.
 */
const encoder = new TextEncoder();

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function pbkdf2(password: string, salt: string, bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode(salt), iterations: 100_000 },
    base,
    bytes * 8,
  );
  return new Uint8Array(bits);
}

const v1KeyIds = new Map<string, Promise<string>>();

/** The v1 key id of a master key (memoised per test file: two PBKDF2 runs per v1 fixture is slow). */
export function v1KeyId(masterKey: string): Promise<string> {
  let id = v1KeyIds.get(masterKey);
  if (!id) {
    id = pbkdf2(masterKey, "dashtray/master-key-id/v1", 8).then(base64Url);
    v1KeyIds.set(masterKey, id);
  }
  return id;
}

/** `plaintext` in format v1 under `masterKey` for (salt, purpose). */
export async function encryptV1(masterKey: string, salt: string, purpose: string, plaintext: string): Promise<string> {
  const keyId = await v1KeyId(masterKey);
  const key = await crypto.subtle.importKey("raw", await pbkdf2(masterKey, salt, 32), "AES-GCM", false, ["encrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(`dtenc:v1:${keyId}:${purpose}`) },
    key,
    encoder.encode(plaintext),
  );
  return ["dtenc", "v1", keyId, base64Url(iv), base64Url(new Uint8Array(sealed))].join(":");
}
