/** The shape of src/test/fixtures/format-vectors.json (pinned ciphertexts of every readable format). */
import type { FormatName } from "./dashtrayFormats";
import file from "../fixtures/format-vectors.json";

export interface FormatVector {
  name: string;
  format: FormatName;
  /** Which master key wrote it. */
  key: "current" | "old";
  /** The value's key id (v1, v2), null for legacy. */
  keyId: string | null;
  salt: string;
  purpose: string;
  /** The row's secret version; bound only by v2. */
  version: number;
  plaintext: string;
  ciphertext: string;
}

export interface FormatVectorFile {
  description: string;
  masterKeys: { current: string; old: string };
  /** base64url of the deployment's 32-byte root salt. */
  rootSalt: string;
  vectors: FormatVector[];
}

/** The committed vectors. */
export const FORMAT_VECTORS = file as FormatVectorFile;
