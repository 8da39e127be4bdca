/**
 * A fresh in-memory Convex backend for one test, with every function module
 * loaded. Closer to production than convex-test's defaults: it enforces
 * Convex's per-transaction limits (documents and bytes read and written,
 * scheduled calls), and every query and mutation execution is recorded for
 * the suite's PBKDF2 budget (helpers/executions.ts). Every document written
 * is checked against the schema, v.record included (helpers/schemaCheck.ts,
 * installed by src/test/setup.ts).
 */
import { convexTest } from "convex-test";
import schema from "../../convex/schema";
import { trackedModules } from "./executions";

const modules = trackedModules(import.meta.glob("../../convex/**/*.ts"));

export function newBackend(options: { transactionLimits?: boolean } = {}) {
  return convexTest({ schema, modules, transactionLimits: options.transactionLimits ?? true });
}

export type Backend = ReturnType<typeof newBackend>;

/** An identity as the auth provider would give it, with a verified email (tokenIdentifier is derived from subject). */
export function identity(name: string) {
  return { subject: `user|${name}`, issuer: "https://auth.test", name, email: `${name}@example.test`, emailVerified: true };
}
