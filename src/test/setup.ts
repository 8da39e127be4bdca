// Every test starts with a valid master key and no previous keys; tests that
// rotate keys change these with vi.stubEnv.
//
// Every test is also held to what production enforces and convex-test does
// not: each document written must pass the schema, v.record included
// (helpers/schemaCheck.ts, through helpers/schemaWritePlugin.ts), and each
// query and mutation to the PBKDF2 budget (helpers/executions.ts).
import { afterEach, beforeEach, vi } from "vitest";
import type { ValidatorJSON } from "convex/values";
import { budgetViolations, installPbkdf2Counter, takeExecutions } from "./helpers/executions";
import { TEST_MASTER_KEY } from "./helpers/keys";
import { documentProblems } from "./helpers/schemaCheck";

interface ExportedSchema {
  schemaValidation: boolean;
  tables: Map<string, { documentType?: ValidatorJSON }>;
}

(globalThis as { __dashtraySchemaWrite?: unknown }).__dashtraySchemaWrite = (
  table: string,
  document: Record<string, unknown>,
  schema: ExportedSchema | null,
) => {
  if (!schema?.schemaValidation) return;
  const documentType = schema.tables.get(table)?.documentType;
  if (!documentType) return;
  const problems = documentProblems(table, documentType, document);
  if (problems.length > 0) {
    throw new Error(
      `Schema check: Convex would refuse this write to table "${table}" (convex-test alone does not check v.record; ` +
        `see src/test/helpers/schemaCheck.ts):\n  ${problems.join("\n  ")}`,
    );
  }
};

installPbkdf2Counter();

beforeEach(() => {
  vi.stubEnv("MASTER_ENCRYPTION_KEY", TEST_MASTER_KEY);
  vi.stubEnv("OLD_MASTER_KEY", "");
  takeExecutions();
});

afterEach(() => {
  const violations = budgetViolations(takeExecutions());
  if (violations) throw new Error(violations);
});
