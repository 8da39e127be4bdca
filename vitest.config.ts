import { defineConfig } from "vitest/config";
import { convexTestSchemaWriteHook } from "./src/test/helpers/schemaWritePlugin";

// Tests run in the edge-runtime environment, close to Convex's V8 runtime
// (which, unlike this environment, has no Buffer: a lint rule guards that).
export default defineConfig({
  // Every document convex-test writes is checked against the schema, v.record included (src/test/setup.ts).
  plugins: [convexTestSchemaWriteHook()],
  test: {
    environment: "edge-runtime",
    server: { deps: { inline: ["convex-test"] } },
    include: ["src/test/**/*.test.ts"],
    setupFiles: ["src/test/setup.ts"],
    // Operator logs (rotation progress, sync failures) are shown only for failing tests.
    silent: "passed-only",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
