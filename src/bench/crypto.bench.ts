// @vitest-environment node
/**
 * Warm AES-GCM table (warmTable.ts) in plain Node's WebCrypto. The
 * edge-runtime environment (cryptoEdge.bench.ts) wraps WebCrypto with
 * per-call overhead of its own; Convex's runtime is neither, so both are
 * shown, each against bare WebCrypto in the same runtime.
 */
import { test } from "vitest";
import { warmTable } from "./warmTable";

test("encryption core against bare WebCrypto, node", async () => {
  console.log(await warmTable("node"));
});
