/**
 * What status tells an operator: the master keys configured now, a fresh
 * inventory of every registered field's values against them (read now, not
 * remembered from a scan), whether OLD_MASTER_KEY can go, and the next step
 * in words. Ids and counts only: never a key, a plaintext or a ciphertext.
 */
import { env } from "../env";
import { isCryptoError } from "../lib/errors";
import { Keyring } from "../lib/keyring";
import { ROTATE_COMMAND, type Job } from "./job";
import { MAX_TALLY_KEY_IDS } from "./rows";
import type { Inventory, KeyringState, Tally } from "./validators";

/** The environment's keyring without throwing: a missing or invalid key becomes `state.error`. */
export async function readConfiguredKeys(rootSalt: string | null, rootSaltMissing: string | null): Promise<{ state: KeyringState; keyring: Keyring | null }> {
  let keyring: Keyring;
  try {
    keyring = Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: env.MASTER_ENCRYPTION_KEY, OLD_MASTER_KEY: env.OLD_MASTER_KEY }, rootSalt);
  } catch (error) {
    if (!isCryptoError(error)) throw error;
    const variable = error.code === "ROOT_SALT_INVALID" ? "encryptionSettings.rootSalt" : (error.source ?? "MASTER_ENCRYPTION_KEY");
    const state = { current: null, previous: [], invalidEntries: [], oldKeySavedOnly: false, currentKeyWeak: [], error: { code: error.code, variable } };
    return { keyring: null, state: { ...state, message: `${variable} is unusable (${error.code})` } };
  }
  const [current, ...previous] = rootSalt === null ? [null] : await Promise.all(keyring.all.map((key) => key.keyId()));
  const invalidEntries = keyring.invalidPrevious.map(({ entry, code }) => ({ variable: "OLD_MASTER_KEY" as const, entry, code }));
  const currentKeyWeak = keyring.current.weakReasons();
  const parts = [
    keyring.previousIncludesCurrent
      ? "old key saved, ready for a new MASTER_ENCRYPTION_KEY"
      : keyring.previous.length > 0
        ? `rotating: MASTER_ENCRYPTION_KEY is the new key, OLD_MASTER_KEY holds ${keyring.previous.length} previous key(s)`
        : "one key: MASTER_ENCRYPTION_KEY (OLD_MASTER_KEY is empty)",
  ];
  if (rootSalt === null) parts.push(rootSaltMissing ? `the root salt is missing although ${rootSaltMissing}` : "nothing is encrypted in format v2 yet, so no key has an id");
  if (currentKeyWeak.length > 0) parts.push(`MASTER_ENCRYPTION_KEY looks non-random (${currentKeyWeak.join(", ")})`);
  for (const { entry, code } of invalidEntries) parts.push(`OLD_MASTER_KEY (entry ${entry}) is unusable (${code})`);
  const error = rootSaltMissing ? { error: { code: "ROOT_SALT_MISSING", variable: "encryptionSettings.rootSalt" } } : {};
  return {
    keyring,
    state: {
      current: current ?? null,
      previous: previous.filter((id): id is string => id !== null),
      invalidEntries,
      oldKeySavedOnly: keyring.previousIncludesCurrent,
      currentKeyWeak,
      ...error,
      message: parts.join("; "),
    },
  };
}

/**
 * The inventory from the pages' tally: each key id marked with the
 * configured key that has it now (v1 ids cost one PBKDF2 per key, only when
 * v1 values exist), and how many values need (or, in the original format,
 * may need) an OLD_MASTER_KEY key.
 */
export async function inventoryOf(tally: Tally, keys: { state: KeyringState; keyring: Keyring | null }, pages: number): Promise<Inventory> {
  const { state, keyring } = keys;
  const v1Ids = keyring && tally.keyIds.some(({ format }) => format === "v1") ? await Promise.all(keyring.all.map((key) => key.v1KeyId())) : [];
  const keyIds = tally.keyIds.map((entry) => {
    const index = entry.format === "v2" ? [state.current, ...state.previous].indexOf(entry.keyId) : v1Ids.indexOf(entry.keyId);
    return { ...entry, configured: index === 0 ? ("current" as const) : index > 0 ? ("previous" as const) : ("missing" as const) };
  });
  // The pages knew v2 ids only: v1 values under a configured key are an older format, not an unknown key.
  const v1Known = keyIds.filter(({ format, configured }) => format === "v1" && configured !== "missing").reduce((sum, { rows }) => sum + rows, 0);
  tally = { ...tally, unknownKey: tally.unknownKey - v1Known, olderFormat: tally.olderFormat + v1Known };
  const needOldKey = keyIds.filter(({ configured }) => configured !== "current").reduce((sum, { rows }) => sum + rows, 0) + tally.originalFormat;
  return {
    takenAt: Date.now(),
    pages,
    tally,
    keyIds,
    missingKeyIds: keyIds.filter(({ configured }) => configured === "missing").map(({ keyId }) => keyId),
    needOldKey: state.previous.length > 0 || keyIds.some(({ configured }) => configured === "missing") ? needOldKey : needOldKey - tally.originalFormat,
  };
}

/** OLD_MASTER_KEY can go: it holds keys, no stored value anywhere needs one of them (fresh inventory), and no job is running. */
export function safeToRemoveOldKey(state: KeyringState, inventory: Inventory | null, job: Job | null): boolean {
  // A key-id list cut at its cap may hide a value under an old key: it keeps the old key.
  return (
    !state.error &&
    state.previous.length > 0 &&
    inventory !== null &&
    inventory.needOldKey === 0 &&
    inventory.missingKeyIds.length === 0 &&
    inventory.keyIds.length < MAX_TALLY_KEY_IDS &&
    job?.status !== "running"
  );
}

/** Rows done of the scan's total in the job's current phase, rows per second and seconds left. */
export function progressOf(job: Job) {
  const total = job.phase === "scan" ? null : job.scan.rows;
  const done = job.phase === "scan" ? job.scan.rows : job.phase === "rewrite" ? job.counts.scanned : job.verification.rows;
  const finished = job.status === "done";
  const percent = finished ? 100 : total === null ? null : total === 0 ? 100 : Math.min(100, Math.floor((done / total) * 100));
  const elapsedSeconds = (job.updatedAt - job.phaseStartedAt) / 1000;
  const rowsPerSecond = done > 0 && elapsedSeconds > 0 ? Math.round((done / elapsedSeconds) * 10) / 10 : null;
  const etaSeconds = finished ? 0 : job.status === "running" && total !== null && rowsPerSecond !== null ? Math.ceil(Math.max(0, total - done) / rowsPerSecond) : null;
  return { phase: job.phase, total, done, percent, rowsPerSecond, etaSeconds };
}

/** The next thing to do, from the keys and the data now, and the latest job. */
export function nextStep(state: KeyringState, inventory: Inventory | null, job: { doc: Job; batchAlive: boolean } | null, safe: boolean): string {
  if (state.error?.code === "ROOT_SALT_MISSING") {
    return "Restore the encryptionSettings row (rootSalt) from your latest backup before anything else: every write is refused until then (docs/key-rotation.md, \"Root salt\")";
  }
  if (state.error) return `Fix ${state.error.variable} (${state.error.code}): see docs/key-rotation.md`;
  const invalid = state.invalidEntries.length > 0 ? "; also fix the unusable OLD_MASTER_KEY entries listed in keys.invalidEntries" : "";
  if (job?.doc.status === "running") {
    const progress = progressOf(job.doc);
    if (!job.batchAlive) return `The job's batch chain stopped: the cron resumes it within 5 minutes (or run ${ROTATE_COMMAND}); read the error in npx convex logs${invalid}`;
    const where = progress.percent === null ? `${progress.done} rows scanned` : `${progress.percent}% of ${progress.total} rows`;
    return `Wait: ${job.doc.dryRun ? "dry run" : "job"} in phase ${job.doc.phase} (${where}); run keyRotation:status again${invalid}`;
  }
  if (state.oldKeySavedOnly) {
    return "Old key saved, ready for a new MASTER_ENCRYPTION_KEY: step 2 of docs/key-rotation.md (set MASTER_ENCRYPTION_KEY to a new key from openssl rand -hex 32)";
  }
  const stop = job?.doc.stopReason;
  if (inventory && inventory.missingKeyIds.length > 0) {
    const paused = stop && stop.code !== "REPLACED" && stop.code !== "KEYRING_CHANGED" ? `${stop.message}. ` : "";
    return `${paused}Values are under master key ids no configured key has (${inventory.missingKeyIds.join(", ")}): add those keys to OLD_MASTER_KEY, then run ${ROTATE_COMMAND}${invalid}`;
  }
  if (stop?.code === "ORIGINAL_KEY_MISSING" && (inventory?.tally.originalFormat ?? 0) > 0) return stop.message + invalid;
  if (state.currentKeyWeak.length > 0) return `MASTER_ENCRYPTION_KEY looks non-random: rotate to a generated key (openssl rand -hex 32), starting at step 1 of docs/key-rotation.md${invalid}`;
  const t = inventory?.tally;
  const toRewrite = t ? t.previousKey + t.olderFormat + t.plaintext + t.olderShape : 0;
  if (toRewrite > 0) {
    if (job?.doc.dryRun && job.doc.status === "done") return `Dry run done: read counts and failureSample, then run ${ROTATE_COMMAND} (step 3)${invalid}`;
    return `${toRewrite} rows need re-encrypting or upgrading: run ${ROTATE_COMMAND} '{"dryRun": true}', then ${ROTATE_COMMAND} (step 3 of docs/key-rotation.md)${invalid}`;
  }
  if (safe) {
    return `Every value is readable without OLD_MASTER_KEY: remove it (step 4), keeping the old key with your backups. If you expected values under OLD_MASTER_KEY's key, check the variables are not swapped (docs/key-rotation.md)${invalid}`;
  }
  if (state.previous.length > 0 && inventory && inventory.needOldKey > 0) {
    return `${inventory.needOldKey} values still need OLD_MASTER_KEY (short-lived OAuth values expire within 15 minutes; failed rows: keyRotation:failures): keep it and run keyRotation:status again${invalid}`;
  }
  if (state.previous.length > 0 && inventory && inventory.keyIds.length >= MAX_TALLY_KEY_IDS) {
    return `Values are under more than ${MAX_TALLY_KEY_IDS} master key ids (keys.keyIds is cut there): keep OLD_MASTER_KEY and read keyRotation:failures (docs/key-rotation.md, "When a row fails")${invalid}`;
  }
  if ((job?.doc.counts.failed ?? 0) > 0 && job?.doc.status === "done") return `The last job left ${job.doc.counts.failed} rows unchanged: read keyRotation:failures (docs/key-rotation.md, "When a row fails")${invalid}`;
  return `Nothing to do: every value is readable under MASTER_ENCRYPTION_KEY. To rotate the key, start at step 1 of docs/key-rotation.md${invalid}`;
}
