/**
 * The public functions whose arguments carry a secret, so that Convex must
 * not validate them (src/convex/access/builders.ts (checkArgs)): they declare `args: any` and
 * check their arguments in the handler. src/test/access/secretArgs.test.ts tests
 * each; src/test/access/everyFunction.test.ts requires an object validator of every other.
 */
export const SECRET_ARGUMENT_FUNCTIONS = [
  "connections:create",
  "connections:updateCredentials",
  "connections:finishOAuth",
  "aiKeys:set",
  "ai:verifyKey",
] as const;
