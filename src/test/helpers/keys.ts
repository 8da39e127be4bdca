/**
 * Master keys for tests (never used anywhere else), shaped like
 * `openssl rand -hex 32` output: a key that looks typed is refused
 * while nothing is encrypted yet (lib/keyStrength.ts).
 */
export const TEST_MASTER_KEY = "6b9b021576ae5881ff2c21b8ec19273f525043f234a9b3bd38568596f1a12ef4";
export const SECOND_MASTER_KEY = "2bcfc7d128ae7a09208f1c37c16a2eb86f9a77321a5ecc9aa6166d361a10c979";
export const THIRD_MASTER_KEY = "772e76f1c7fd25b3e2c8acbb6ea988b37459e2948d5f20efeccf2a57f2232e9e";
/** A key that is long enough but obviously not random (32 repeated characters). */
export const WEAK_MASTER_KEY = "a".repeat(32);

/** A deployment root salt for tests (base64url of 32 bytes), as encryptionSettings.rootSalt holds one. */
export const TEST_ROOT_SALT = "dGVzdC1yb290LXNhbHQtMDEyMzQ1Njc4OWFiY2RlZi0";
/** Another deployment's root salt. */
export const OTHER_ROOT_SALT = "b3RoZXItcm9vdC1zYWx0LTAxMjM0NTY3ODlhYmNkZWY";
