/**
 * The deployment's environment variables (`npx convex env set NAME value`),
 * as one record of optional strings.
 *
 * `env` in _generated/server is typed by whichever CLI command wrote that
 * file: `npm run codegen` (`convex codegen`, offline) types it as a record of
 * every name, while `npx convex dev` and `npx convex deploy` type it with
 * only the platform's variables (CONVEX_CLOUD_URL, CONVEX_SITE_URL) and those
 * a convex.config.ts declares. The project reads its own variables
 * (MASTER_ENCRYPTION_KEY, provider URLs, ...) through this record, so it
 * typechecks whichever of the two wrote _generated.
 */
import { env as generatedEnv } from "./_generated/server";

export const env: Readonly<Record<string, string | undefined>> = generatedEnv;
