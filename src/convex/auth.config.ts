/**
 * Which identity provider's tokens the deployment accepts (any OIDC
 * provider: Clerk, Auth0, WorkOS, ...). Configure it per deployment:
 *
 *   npx convex env set AUTH_ISSUER_URL https://your-issuer.example.com
 *   npx convex env set AUTH_APPLICATION_ID your-client-id   # the tokens' "aud"
 *
 * Without both variables no provider is configured and every call is
 * UNAUTHENTICATED (fail closed), which keeps codegen and tests working.
 */
import type { AuthConfig } from "convex/server";
import { env } from "./_generated/server";

const issuer = env.AUTH_ISSUER_URL;
const applicationID = env.AUTH_APPLICATION_ID;

export default {
  providers: issuer && applicationID ? [{ domain: issuer, applicationID }] : [],
} satisfies AuthConfig;
