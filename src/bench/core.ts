/**
 * The encryption core as the warm table drives it (warmTable.ts): the
 * project's encryptSecret / decryptSecret with a keyring whose root (and the
 * benchmark salt's HKDF key) is already derived, and bare WebCrypto with the
 * same key and AAD. The bare side derives its key from docs/encryption.md
 * (root = PBKDF2(master key, root salt); key = HKDF(root, "dashtray/v2/aes-256-gcm/" + salt)),
 * not from the project's code; warmTable.ts checks each side opens the other's output.
 */
import { hkdfSync } from "node:crypto";
import { decryptSecret, encryptSecret, type SecretContext } from "../convex/lib/cipher";
import { Keyring } from "../convex/lib/keyring";
import { TEST_MASTER_KEY } from "../test/helpers/keys";
import { ITERATIONS, onePbkdf2 } from "./designs";

const CONTEXT: SecretContext = { salt: "project_bench", purpose: "connections/conn_bench/credentials", version: 3 };
const encoder = new TextEncoder();

export interface BareSealed {
  iv: Uint8Array<ArrayBuffer>;
  sealed: Uint8Array<ArrayBuffer>;
}

export interface CoreUnderTest {
  description: string;
  encrypt(): Promise<string>;
  decrypt(value: string): Promise<string>;
  /** crypto.subtle.encrypt alone (a fresh IV unless given; same key, AAD and plaintext): the floor for encrypt. */
  bareEncrypt(iv?: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer>;
  /** crypto.subtle.decrypt alone on `value`'s IV and sealed bytes (decoded beforehand): the floor for decrypt. */
  bareDecrypt(opened: BareSealed): Promise<ArrayBuffer>;
  /** The IV and sealed bytes of a stored value (outside the timed loop). */
  parse(value: string): BareSealed;
  /** A stored value built from bare output, to check the core opens it. */
  format(sealed: BareSealed): string;
  derivePerOperation(): Promise<void>;
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** The v2 AES key and key id of `masterKey` under `rootSalt`, from the spec. */
async function specKeys(masterKey: string, rootSalt: Uint8Array<ArrayBuffer>, salt: string): Promise<{ key: CryptoKey; keyId: string }> {
  const password = await crypto.subtle.importKey("raw", encoder.encode(masterKey), "PBKDF2", false, ["deriveBits"]);
  const root = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: rootSalt, iterations: ITERATIONS }, password, 256);
  // HKDF from node:crypto: independent of the project's HMAC-based HKDF (lib/kdf.ts).
  const hkdf = (info: string, length: number) => new Uint8Array(hkdfSync("sha256", new Uint8Array(root), new Uint8Array(0), encoder.encode(info), length));
  const keyIdBits = hkdf("dashtray/v2/key-id", 8);
  const key = await crypto.subtle.importKey("raw", hkdf(`dashtray/v2/aes-256-gcm/${salt}`, 32), { name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  return { key, keyId: toBase64Url(keyIdBits) };
}

export async function coreUnderTest(plaintext: string): Promise<CoreUnderTest> {
  const rootSaltBytes = crypto.getRandomValues(new Uint8Array(32));
  const keyring = Keyring.fromSecrets(TEST_MASTER_KEY, [], toBase64Url(rootSaltBytes));
  // Warm the keyring: its root and the salt's key are derived by this first call.
  await encryptSecret(keyring, plaintext, CONTEXT);
  const { key, keyId } = await specKeys(TEST_MASTER_KEY, rootSaltBytes, CONTEXT.salt);
  const header = `dtenc:v2:${keyId}`;
  const additionalData = encoder.encode(`${header}:${CONTEXT.version}:${CONTEXT.purpose}`);
  const plaintextBytes = encoder.encode(plaintext);
  return {
    description: "format v2, keyring root already derived",
    encrypt: () => encryptSecret(keyring, plaintext, CONTEXT),
    decrypt: async (value) => (await decryptSecret(keyring, value, CONTEXT)).plaintext,
    bareEncrypt: (iv = crypto.getRandomValues(new Uint8Array(12))) =>
      crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData }, key, plaintextBytes),
    bareDecrypt: ({ iv, sealed }) => crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData }, key, sealed),
    parse: (value) => {
      const [, , , iv = "", sealed = ""] = value.split(":");
      return { iv: fromBase64Url(iv), sealed: fromBase64Url(sealed) };
    },
    format: ({ iv, sealed }) => `${header}:${toBase64Url(iv)}:${toBase64Url(sealed)}`,
    derivePerOperation: () => onePbkdf2(TEST_MASTER_KEY, `bench-${Math.random()}`),
  };
}
