// ESLint flat config (run from the project root: `npm run lint`, which passes
// `-c src/lint/eslint.config.js`): TypeScript rules everywhere, Convex rules for
// the functions directory, and a guard against Node-only APIs in files that run
// in the Convex runtime (everything under src/convex without "use node").
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import convexPlugin from "@convex-dev/eslint-plugin";
import { noNodeOnlyApis } from "./noNodeOnlyApis.js";

export default tseslint.config(
  { ignores: ["node_modules/**", "src/convex/_generated/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...convexPlugin.configs.recommended,
  {
    files: ["src/convex/**/*.ts"],
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
    files: ["src/test/**/*.ts", "src/bench/**/*.ts"],
    rules: { "no-console": "off" },
  },
);
