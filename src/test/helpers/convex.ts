/** A fresh in-memory Convex backend for one test, with every function module loaded. */
import { convexTest } from "convex-test";
import schema from "../../convex/schema";

const modules = import.meta.glob("../../convex/**/*.ts");

export function newBackend() {
  return convexTest(schema, modules);
}

export type Backend = ReturnType<typeof newBackend>;

/** An identity as the auth provider would give it, with a verified email (tokenIdentifier is derived from subject). */
export function identity(name: string) {
  return { subject: `user|${name}`, issuer: "https://auth.test", name, email: `${name}@example.test`, emailVerified: true };
}
