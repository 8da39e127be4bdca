/**
 * What keyRotation:status tells an operator besides the job itself: the
 * master keys configured now (ids, unusable entries, a weak current key,
 * whether step 1 of the runbook is done), the key ids a scan found in the
 * data against those keys, the job's progress, and the next step in words.
 * Ids and counts only: never a key, a plaintext or a ciphertext.
 */
import type { Doc } from "../_generated/dataModel";
import { env } from "../env";
import { isCryptoError } from "../lib/errors";
import { Keyring } from "../lib/keyring";
import type { KeyInventory, KeyringState, RotationProgress } from "../validators";

type Job = Doc<"keyRotationJobs">;

/** The keys configured now: their state for status, and the keyring (null when MASTER_ENCRYPTION_KEY is unusable). */
export interface ConfiguredKeys {
  state: KeyringState;
  keyring: Keyring | null;
}

/** The environment's keyring without throwing: a missing or invalid key becomes `state.error`. */
function keyringOrError(rootSalt: string | null): { keyring: Keyring } | { error: { code: string; variable: string } } {
  try {
    return {
      keyring: Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: env.MASTER_ENCRYPTION_KEY, OLD_MASTER_KEY: env.OLD_MASTER_KEY }, rootSalt),
    };
  } catch (error) {
    if (!isCryptoError(error)) throw error;
    const variable = error.code === "ROOT_SALT_INVALID" ? "encryptionSettings.rootSalt" : (error.source ?? "MASTER_ENCRYPTION_KEY");
    return { error: { code: error.code, variable } };
  }
}

/**
 * The master keys configured now. Costs one PBKDF2 per usable key (its v2
 * id), none when the deployment has no root salt yet (no v2 id exists then).
 */
export async function readConfiguredKeys(rootSalt: string | null): Promise<ConfiguredKeys> {
  const loaded = keyringOrError(rootSalt);
  if ("error" in loaded) {
    return {
      keyring: null,
      state: {
        current: null,
        previous: [],
        invalidEntries: [],
        oldKeySavedOnly: false,
        currentKeyWeak: [],
        error: loaded.error,
        message: `${loaded.error.variable} is unusable (${loaded.error.code})`,
      },
    };
  }
  const { keyring } = loaded;
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
  if (rootSalt === null) parts.push("nothing is encrypted in format v2 yet, so no key has an id");
  if (currentKeyWeak.length > 0) parts.push(`MASTER_ENCRYPTION_KEY looks non-random (${currentKeyWeak.join(", ")})`);
  for (const { entry, code } of invalidEntries) parts.push(`OLD_MASTER_KEY (entry ${entry}) is unusable (${code})`);
  return {
    keyring,
    state: {
      current: current ?? null,
      previous: previous.filter((id): id is string => id !== null),
      invalidEntries,
      oldKeySavedOnly: keyring.previousIncludesCurrent,
      currentKeyWeak,
      message: parts.join("; "),
    },
  };
}

/**
 * The key ids `job`'s scan found, each marked with the configured key that
 * has it now. v1 ids are computed (one PBKDF2 per configured key) only when
 * the data holds v1 values.
 */
export async function inventoryOf(job: Job, keys: ConfiguredKeys): Promise<KeyInventory | null> {
  const { inventory, scanFinishedAt } = job;
  if (!inventory || scanFinishedAt === undefined) return null;
  const { keyring, state } = keys;
  const v1Ids =
    keyring && inventory.keyIds.some(({ format }) => format === "v1") ? await Promise.all(keyring.all.map((key) => key.v1KeyId())) : [];
  const configuredAs = (keyId: string, format: "v1" | "v2") => {
    const index = format === "v2" ? [state.current, ...state.previous].indexOf(keyId) : v1Ids.indexOf(keyId);
    return index === 0 ? ("current" as const) : index > 0 ? ("previous" as const) : ("missing" as const);
  };
  const keyIds = inventory.keyIds.map((entry) => ({ ...entry, configured: configuredAs(entry.keyId, entry.format) }));
  return {
    jobId: job._id,
    scannedAt: scanFinishedAt,
    keyIds,
    missingKeyIds: keyIds.filter(({ configured }) => configured === "missing").map(({ keyId }) => keyId),
    otherKeyIdRows: inventory.otherKeyIdRows,
    originalFormat: inventory.originalFormat,
    plaintext: job.preflight.plaintext,
    invalid: job.preflight.invalid,
  };
}

/** Rows done of the scan's total in the job's current phase, rows per second and seconds left. */
export function progressOf(job: Job): RotationProgress {
  const total = job.phase === "scan" ? null : job.preflight.rows;
  const done = job.phase === "scan" ? job.preflight.rows : job.phase === "rotate" ? job.counts.scanned : job.verification.rows;
  const finished = job.status === "done";
  const percent = finished ? 100 : total === null ? null : total === 0 ? 100 : Math.min(100, Math.floor((done / total) * 100));
  const elapsedSeconds = (job.updatedAt - (job.phaseStartedAt ?? job.startedAt)) / 1000;
  const rowsPerSecond = done > 0 && elapsedSeconds > 0 ? Math.round((done / elapsedSeconds) * 10) / 10 : null;
  const etaSeconds =
    finished || job.status !== "running"
      ? finished
        ? 0
        : null
      : total !== null && rowsPerSecond !== null
        ? Math.ceil(Math.max(0, total - done) / rowsPerSecond)
        : null;
  return { phase: job.phase, total, done, percent, rowsPerSecond, etaSeconds };
}

/** How to run the next step, for messages. */
export const ROTATE_COMMAND = "npx convex run keyRotation:rotate";

/** The next thing to do, from the keys configured now and the latest job (with its derived facts). */
export function nextStep(
  keys: KeyringState,
  job: { doc: Job; progress: RotationProgress; batchAlive: boolean; safeToRemoveOldKey: boolean; matchesKeysNow: boolean } | null,
): string {
  if (keys.error) return `Fix ${keys.error.variable} (${keys.error.code}): see docs/key-rotation.md`;
  if (keys.oldKeySavedOnly) {
    return "Old key saved, ready for a new MASTER_ENCRYPTION_KEY: step 2 of docs/key-rotation.md (set MASTER_ENCRYPTION_KEY to a new key from openssl rand -hex 32)";
  }
  if (keys.currentKeyWeak.length > 0) {
    return "MASTER_ENCRYPTION_KEY looks non-random: rotate to a generated key (openssl rand -hex 32), starting at step 1 of docs/key-rotation.md";
  }
  const invalid = keys.invalidEntries.length > 0 ? "; also fix the unusable OLD_MASTER_KEY entries listed in keys.invalidEntries" : "";
  // A finished or stopped job for other keys (e.g. the next rotation configured since) says nothing about now.
  if (job && (job.doc.status === "running" || job.matchesKeysNow)) {
    const { doc, progress } = job;
    if (doc.status === "running") {
      if (!job.batchAlive) {
        return `The job's batch chain stopped: the cron resumes it within 5 minutes (or run ${ROTATE_COMMAND}); read the error in npx convex logs${invalid}`;
      }
      const where = progress.percent === null ? `${progress.done} rows scanned` : `${progress.percent}% of ${progress.total} rows`;
      return `Wait: ${doc.dryRun ? "dry run" : "rotation"} in phase ${doc.phase} (${where}); run keyRotation:status again${invalid}`;
    }
    if (doc.status === "stopped" && doc.stopReason) return doc.stopReason.message + invalid;
    if (doc.status === "done") {
      if (doc.dryRun) return `Dry run done: read counts and failureSample, then run ${ROTATE_COMMAND} (step 4)${invalid}`;
      if (job.safeToRemoveOldKey) return `Rotation done: remove OLD_MASTER_KEY (step 6), keeping the old key with your backups${invalid}`;
      if (keys.previous.length === 0) return `Nothing to do: to rotate the key, start at step 1 of docs/key-rotation.md${invalid}`;
      return `Rotation done but OLD_MASTER_KEY is still needed: read counts.failed, failureSample and verification (docs/key-rotation.md, "When a row fails")${invalid}`;
    }
  }
  if (keys.previous.length > 0) return `Run a dry run, then the rotation: step 3 of docs/key-rotation.md${invalid}`;
  return `Nothing to do: to rotate the key, start at step 1 of docs/key-rotation.md${invalid}`;
}

/** Positions of OLD_MASTER_KEY's unusable entries (no derivation; none when MASTER_ENCRYPTION_KEY itself is unusable). */
export function unusableOldKeyEntries(): number[] {
  const loaded = keyringOrError(null);
  return "keyring" in loaded ? loaded.keyring.invalidPrevious.map(({ entry }) => entry) : [];
}
