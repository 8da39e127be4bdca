/**
 * Generates src/test/fixtures/format-vectors.json ONCE, with the independent
 * node:crypto implementation (never the project's code). Not part of
 * `npm test`: run on demand with
 *   npx vitest run --config src/test/independent/vitest.vectors.config.ts
 * It refuses to overwrite a committed file unless VECTORS_WRITE=1: committed
 * ciphertexts pin the formats and must never be regenerated casually. Without
 * VECTORS_WRITE it checks that the committed file is what it would write.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import {
  base64url,
  encryptLegacy,
  encryptV1,
  encryptV2,
  v1KeyId,
  v2KeyId,
  v2Root,
  type FormatName,
} from "./dashtrayFormats";
import type { FormatVector, FormatVectorFile } from "./vectorFile";

const OUTPUT = fileURLToPath(new URL("../fixtures/format-vectors.json", import.meta.url));

const CURRENT = "vector-current-master-key-7f3a9c1e5b2d4086a1c3e5f7092b4d6e";
const OLD = "vector-old-master-key-0e1d2c3b4a59687766554433221100ffeedd";
const ROOT_SALT = createHash("sha256").update("dashtray format vectors: root salt").digest();

const PROJECT_SALT = "jd7f2k9x4m1q8w3e6r5t0y2u";
const USER_SALT = "kh3m9n2b5v8c1x4z7l0p6o9i";
const CONNECTION_PURPOSE = "connections/j57a8b9c0d1e2f3g4h5i6j7k/credentials";
const AI_KEY_PURPOSE = `aiKeys/${USER_SALT}/apiKey`;

const PLAINTEXTS = {
  empty: "",
  credentials: JSON.stringify({ apiKey: "sk_live_51HvectorExampleToken0123456789", accountId: "acct_1Hvector" }),
  unicode: "Grüße, 東京, Ελληνικά, emoji 🔐🧪, e\u0301 combining, tab\t, quote \" and NUL \u0000 end",
  oneKilobyte: Array.from({ length: 1024 }, (_, i) => String.fromCharCode(33 + ((i * 7) % 94))).join(""),
};

type PlaintextName = keyof typeof PLAINTEXTS;

interface Plan {
  format: FormatName;
  key: "current" | "old";
  plaintext: PlaintextName;
  salt: string;
  purpose: string;
  version: number;
}

const PLANS: Plan[] = [
  ...(["empty", "credentials", "unicode", "oneKilobyte"] as const).map(
    (plaintext): Plan => ({ format: "legacy", key: "current", plaintext, salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 0 }),
  ),
  { format: "legacy", key: "old", plaintext: "credentials", salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 0 },
  ...(["empty", "credentials", "unicode", "oneKilobyte"] as const).map(
    (plaintext): Plan => ({ format: "v1", key: "current", plaintext, salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 0 }),
  ),
  { format: "v1", key: "old", plaintext: "credentials", salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 0 },
  { format: "v2", key: "current", plaintext: "empty", salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 0 },
  { format: "v2", key: "current", plaintext: "credentials", salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 1 },
  { format: "v2", key: "current", plaintext: "unicode", salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 17 },
  { format: "v2", key: "current", plaintext: "oneKilobyte", salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 1234567890123 },
  { format: "v2", key: "current", plaintext: "credentials", salt: USER_SALT, purpose: AI_KEY_PURPOSE, version: 0 },
  { format: "v2", key: "old", plaintext: "credentials", salt: PROJECT_SALT, purpose: CONNECTION_PURPOSE, version: 2 },
  { format: "v2", key: "old", plaintext: "unicode", salt: USER_SALT, purpose: AI_KEY_PURPOSE, version: 5 },
];

function build(): FormatVectorFile {
  const vectors = PLANS.map((plan): FormatVector => {
    const name = `${plan.format} ${plan.key} ${plan.plaintext} ${plan.purpose.split("/")[0]} v${plan.version}`;
    const iv = createHash("sha256").update(`dashtray format vectors: iv: ${name}`).digest().subarray(0, 12);
    const master = plan.key === "current" ? CURRENT : OLD;
    const plaintext = PLAINTEXTS[plan.plaintext];
    const context = { salt: plan.salt, purpose: plan.purpose, version: plan.version };
    let ciphertext: string;
    let keyId: string | null;
    if (plan.format === "legacy") {
      ciphertext = encryptLegacy(master, plan.salt, plaintext, iv);
      keyId = null;
    } else if (plan.format === "v1") {
      ciphertext = encryptV1(master, context, plaintext, iv);
      keyId = v1KeyId(master);
    } else {
      ciphertext = encryptV2(master, ROOT_SALT, context, plaintext, iv);
      keyId = v2KeyId(v2Root(master, ROOT_SALT));
    }
    return { name, format: plan.format, key: plan.key, keyId, ...context, plaintext, ciphertext };
  });
  return {
    description:
      "Pinned ciphertexts of every readable Dashtray format, made once by src/test/independent/makeVectors.gen.ts " +
      "with node:crypto from docs/encryption.md. Never regenerate them to make a test pass.",
    masterKeys: { current: CURRENT, old: OLD },
    rootSalt: base64url(ROOT_SALT),
    vectors,
  };
}

test("format vectors", () => {
  const text = `${JSON.stringify(build(), null, 2)}\n`;
  if (!existsSync(OUTPUT) || process.env.VECTORS_WRITE === "1") {
    writeFileSync(OUTPUT, text);
  } else {
    expect(readFileSync(OUTPUT, "utf8")).toBe(text);
  }
});
