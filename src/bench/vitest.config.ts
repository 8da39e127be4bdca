import { defineConfig } from "vitest/config";

// `npm run bench`: benchmark files print ratios measured in one run. They
// assert nothing about time; the test suite never includes them.
export default defineConfig({
  test: {
    environment: "edge-runtime",
    server: { deps: { inline: ["convex-test"] } },
    include: ["src/bench/**/*.bench.ts"],
    setupFiles: ["src/test/setup.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
