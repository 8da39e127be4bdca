// Every test starts with a valid master key and no previous keys; tests that
// rotate keys change these with vi.stubEnv.
import { beforeEach, vi } from "vitest";
import { TEST_MASTER_KEY } from "./helpers/keys";

beforeEach(() => {
  vi.stubEnv("MASTER_ENCRYPTION_KEY", TEST_MASTER_KEY);
  vi.stubEnv("OLD_MASTER_KEY", "");
});
