/**
 * The encryption core as the warm table drives it (warmTable.ts): the
 * project's encryptSecret / decryptSecret with a keyring whose key for the
 * benchmark's salt is already derived, and bare WebCrypto with that same
 * key and AAD.
 */
import { decryptSecret, encryptSecret, type SecretContext } from "../convex/lib/cipher";
import { DEFAULT_PBKDF2_ITERATIONS, DerivedKeyCache } from "../convex/lib/kdf";
import { Keyring } from "../convex/lib/keyring";
import { TEST_MASTER_KEY } from "../test/helpers/keys";
import { onePbkdf2 } from "./designs";

const CONTEXT: SecretContext = { salt: "project_bench", purpose: "connections/conn_bench/credentials" };

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

export async function coreUnderTest(plaintext: string): Promise<CoreUnderTest> {
  const keyring = await Keyring.fromSecrets(TEST_MASTER_KEY);
  const cache = new DerivedKeyCache();
  const key = await keyring.current.aesKey("v1", CONTEXT.salt, DEFAULT_PBKDF2_ITERATIONS, cache);
  const header = `dtenc:v1:${keyring.current.id}`;
  const additionalData = new TextEncoder().encode(`${header}:${CONTEXT.purpose}`);
  const plaintextBytes = new TextEncoder().encode(plaintext);
  return {
    description: "format v1, key from a warm cache",
    encrypt: () => encryptSecret(keyring, plaintext, CONTEXT, { cache }),
    decrypt: async (value) => (await decryptSecret(keyring, value, CONTEXT, { cache })).plaintext,
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
