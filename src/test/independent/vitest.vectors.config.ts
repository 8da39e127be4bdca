import { defineConfig } from "vitest/config";

// Runs only the vector generator (never part of `npm test`).
export default defineConfig({
  test: {
    environment: "node",
    include: ["src/test/independent/makeVectors.gen.ts"],
  },
});
