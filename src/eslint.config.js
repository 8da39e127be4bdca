// ESLint flat config for everything under src/ (`npm run lint`; ESLint 10 and
// editors find it from the linted file, and patterns here are relative to src/):
// TypeScript rules everywhere, Convex rules for the functions directory, and a
// guard against Node-only APIs in files that run in the Convex runtime
// (everything under src/convex without "use node").
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import convexPlugin from "@convex-dev/eslint-plugin";
import { noNodeOnlyApis } from "./lint/noNodeOnlyApis.js";

export default tseslint.config(
  { ignores: ["convex/_generated/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...convexPlugin.configs.recommended,
  {
    files: ["convex/**/*.ts"],
    plugins: { dashtray: { rules: { "no-node-only-apis": noNodeOnlyApis } } },
    rules: {
      "dashtray/no-node-only-apis": "error",
      "@convex-dev/no-filter-in-query": "error",
      "@convex-dev/require-access-control": "off",
    },
  },
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": ["error", { allow: ["warn", "error", "info"] }],
    },
  },
  {
    files: ["test/**/*.ts", "bench/**/*.ts"],
    rules: { "no-console": "off" },
  },
);
