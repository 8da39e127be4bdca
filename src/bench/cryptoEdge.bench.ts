/**
 * Warm AES-GCM table (warmTable.ts) in the edge-runtime environment the
 * tests use (see crypto.bench.ts for plain Node).
 */
import { test } from "vitest";
import { warmTable } from "./warmTable";

test("encryption core against bare WebCrypto, edge-runtime", async () => {
  console.log(await warmTable("edge-runtime"));
});
