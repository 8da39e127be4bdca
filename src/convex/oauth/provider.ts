/**
 * The provider side every OAuth stage shares: which integrations connect
 * over OAuth, and the redirect URI registered with their provider.
 */
import { env } from "../env";
import { providerAppError } from "../errors";
import { ProviderError } from "../providers/errors";
import { findIntegration } from "../providers/integrations/registry";
import type { Integration, OAuthProvider } from "../providers/integrations/types";

/** Path of the HTTP route the provider redirects to (http.ts). */
export const OAUTH_CALLBACK_PATH = "/oauth/callback";

/** An integration that connects over OAuth. */
export type OAuthIntegration = Integration & { oauth: OAuthProvider };

export function oauthIntegration(service: string): OAuthIntegration | null {
  const integration = findIntegration(service);
  return integration?.oauth ? { ...integration, oauth: integration.oauth } : null;
}

/** The redirect URI registered with the provider: this deployment's HTTP actions URL + /oauth/callback. */
export function oauthRedirectUri(): string {
  const site = env.CONVEX_SITE_URL?.trim();
  if (!site) throw providerAppError(new ProviderError("OAuth (CONVEX_SITE_URL)", "not_configured"));
  return `${site.replace(/\/+$/, "")}${OAUTH_CALLBACK_PATH}`;
}
