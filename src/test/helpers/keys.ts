/** Master keys for tests (never used anywhere else). */
export const TEST_MASTER_KEY = "test-master-key-0000000000000000000000000000000000000000000000000";
export const SECOND_MASTER_KEY = "test-master-key-1111111111111111111111111111111111111111111111111";
export const THIRD_MASTER_KEY = "test-master-key-2222222222222222222222222222222222222222222222222";

/** A deployment root salt for tests (base64url of 32 bytes), as encryptionSettings.rootSalt holds one. */
export const TEST_ROOT_SALT = "dGVzdC1yb290LXNhbHQtMDEyMzQ1Njc4OWFiY2RlZi0";
/** Another deployment's root salt. */
export const OTHER_ROOT_SALT = "b3RoZXItcm9vdC1zYWx0LTAxMjM0NTY3ODlhYmNkZWY";
