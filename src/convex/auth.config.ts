/**
 * Which identity provider's tokens the deployment accepts (any OIDC
 * provider: Clerk, Auth0, WorkOS, ...). Configure it per deployment:
 *
 *   npx convex env set AUTH_ISSUER_URL https://your-issuer.example.com
 *   npx convex env set AUTH_APPLICATION_ID your-client-id   # the tokens' "aud"
 *
 * Without both variables no provider is configured and every call is
 * UNAUTHENTICATED (fail closed), so a new deployment can be pushed before
 * auth is set up.
 */
import type { AuthConfig } from "convex/server";
import { env } from "./env";

/**
 * A deployment variable, or undefined when it is unset. When Convex
 * evaluates this file, reading an unset variable throws (and, uncaught,
 * fails the push) instead of returning undefined.
 */
function optionalEnv(name: "AUTH_ISSUER_URL" | "AUTH_APPLICATION_ID"): string | undefined {
  try {
    return env[name] || undefined;
  } catch {
    return undefined;
  }
}

const issuer = optionalEnv("AUTH_ISSUER_URL");
const applicationID = optionalEnv("AUTH_APPLICATION_ID");

export default {
  providers: issuer && applicationID ? [{ domain: issuer, applicationID }] : [],
} satisfies AuthConfig;
