import { expect, test } from "vitest";
import { Keyring } from "../../convex/lib/keyring";
import { decryptSecret, encryptSecret } from "../../convex/lib/cipher";
import { TEST_MASTER_KEY } from "../helpers/keys";

test("round trip", async () => {
  const keyring = await Keyring.fromSecrets(TEST_MASTER_KEY);
  const t0 = performance.now();
  const c = await encryptSecret(keyring, "hello", { salt: "p1", purpose: "x" });
  const t1 = performance.now();
  const d = await decryptSecret(keyring, c, { salt: "p1", purpose: "x" });
  const t2 = performance.now();
  console.log(c, d, t1 - t0, t2 - t1, JSON.stringify(keyring));
  expect(d.plaintext).toBe("hello");
});
