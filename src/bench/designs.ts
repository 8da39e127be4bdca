/**
 * The designs the benchmarks compare against, implemented here from
 * docs/encryption.md (not from the project's code), so their cost is
 * measured in the same runtime rather than assumed:
 *
 * - original Dashtray ("Legacy format"): one PBKDF2-SHA256(100,000) per
 *   operation, key = PBKDF2(password = master key + salt, salt = salt), then
 *   AES-256-GCM without AAD.
 * - v1 ("Format v1"): a key id per configured master key,
 *   PBKDF2(master key, "dashtray/master-key-id/v1", 8 bytes), computed when
 *   the keyring loads, plus one PBKDF2(master key, salt) per salt used, then
 *   AES-256-GCM with AAD "dtenc:v1:<keyId>:<purpose>".
 */

export const ITERATIONS = 100_000;
const encoder = new TextEncoder();

async function pbkdf2AesKey(password: string, salt: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode(salt), iterations: ITERATIONS },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

async function v1KeyId(masterKey: string): Promise<string> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(masterKey), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode("dashtray/master-key-id/v1"), iterations: ITERATIONS },
    base,
    64,
  );
  let binary = "";
  for (const byte of new Uint8Array(bits)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** One operation of the original design: derive the salt's key, then seal (or open) one secret. */
export async function originalOperation(masterKey: string, salt: string, plaintext: string): Promise<void> {
  const key = await pbkdf2AesKey(masterKey + salt, salt);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, encoder.encode(plaintext));
}

/**
 * One call of the v1 design, cold: load the keyring (a key id per master
 * key, current first), derive the salt's key under one of them, then seal
 * one secret. Returns the PBKDF2 runs it made.
 */
export async function v1Call(masterKeys: readonly string[], salt: string, purpose: string, plaintext: string): Promise<number> {
  const ids: string[] = [];
  for (const masterKey of masterKeys) ids.push(await v1KeyId(masterKey));
  const key = await pbkdf2AesKey(masterKeys[0]!, salt);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const additionalData = encoder.encode(`dtenc:v1:${ids[0]}:${purpose}`);
  await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData }, key, encoder.encode(plaintext));
  return masterKeys.length + 1;
}

/** One bare PBKDF2-SHA256(100,000) to 32 bytes: the unit every design pays. */
export async function onePbkdf2(masterKey: string, salt: string): Promise<void> {
  await pbkdf2AesKey(masterKey, salt);
}

/** Median of the values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Milliseconds per run of `work`: the median of `runs` sequential runs. */
export async function medianMs(runs: number, work: (index: number) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let index = 0; index < runs; index++) {
    const started = performance.now();
    await work(index);
    times.push(performance.now() - started);
  }
  return median(times);
}

/** A fixed-width text table, first column left-aligned. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  const line = (row: readonly string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ");
  return [line(rows[0]!), widths.map((width) => "-".repeat(width)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

/** A positive integer from the environment, or `fallback`. */
export function envInt(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}
