/**
 * Every integration Dashtray knows, by id. Adding one is one file plus one
 * line here (docs/integrations.md).
 */
import { appError } from "../../errors";
import { maskSecret } from "../../lib/mask";
import type { Credentials } from "../../validators";
import { github } from "./github";
import { googleAnalytics } from "./googleAnalytics";
import { plausible } from "./plausible";
import { stripe } from "./stripe";
import type { Integration } from "./types";

const INTEGRATIONS: readonly Integration[] = [stripe, github, plausible, googleAnalytics];

/** Longest accepted credential value (real keys are far shorter). */
export const MAX_CREDENTIAL_LENGTH = 4096;

/** The integration with this id, or undefined. */
export function findIntegration(service: string): Integration | undefined {
  return INTEGRATIONS.find((integration) => integration.id === service);
}

/** Ids of all integrations, for error messages and the dashboard. */
export function integrationIds(): string[] {
  return INTEGRATIONS.map((integration) => integration.id);
}

/**
 * The integration for `service` and the credentials trimmed, after checking
 * they have exactly its fields, each non-empty and of the field's format.
 * INVALID_CREDENTIALS messages name only known services and the
 * integration's own fields: never an argument as given (a key pasted as the
 * service id or as a field name would otherwise be echoed back), nor a value.
 */
export function validateCredentials(
  service: string,
  credentials: Credentials,
): { integration: Integration; credentials: Credentials } {
  const integration = findIntegration(service);
  if (!integration) {
    throw appError("INVALID_CREDENTIALS", `Unknown service; expected one of: ${integrationIds().join(", ")}`);
  }
  if (integration.oauth) {
    throw appError(
      "INVALID_CREDENTIALS",
      `${integration.name} connects through ${integration.oauth.providerName} sign-in: use connections.startOAuth`,
    );
  }
  return { integration, credentials: checkFields(integration, credentials) };
}

/**
 * The settings of an OAuth integration trimmed, checked like credentials
 * (exactly its fields, each non-empty and well-formed). INVALID_ARGUMENT for
 * a service that is not an OAuth integration.
 */
export function validateOAuthSettings(
  service: string,
  settings: Credentials,
): { integration: Integration & { oauth: NonNullable<Integration["oauth"]> }; settings: Credentials } {
  const integration = findIntegration(service);
  if (!integration?.oauth) {
    const oauthIds = INTEGRATIONS.filter((candidate) => candidate.oauth).map((candidate) => candidate.id);
    throw appError("INVALID_ARGUMENT", `Unknown OAuth service; expected one of: ${oauthIds.join(", ")}`);
  }
  return { integration: { ...integration, oauth: integration.oauth }, settings: checkFields(integration, settings) };
}

/** `credentials` trimmed after checking they are exactly `integration`'s fields, each non-empty and well-formed. */
function checkFields(integration: Integration, credentials: Credentials): Credentials {
  const expected = new Set(integration.credentialFields.map((field) => field.name));
  if (Object.keys(credentials).some((name) => !expected.has(name))) {
    throw appError(
      "INVALID_CREDENTIALS",
      `${integration.name} takes only these credential fields: ${[...expected].join(", ")}`,
    );
  }
  const cleaned: Credentials = {};
  for (const field of integration.credentialFields) {
    const value = credentials[field.name]?.trim() ?? "";
    if (!value) throw appError("INVALID_CREDENTIALS", `${integration.name} needs "${field.name}" (${field.label})`);
    if (value.length > MAX_CREDENTIAL_LENGTH) {
      throw appError("INVALID_CREDENTIALS", `"${field.name}" is longer than ${MAX_CREDENTIAL_LENGTH} characters`);
    }
    if (field.format && !field.format.pattern.test(value)) {
      throw appError("INVALID_CREDENTIALS", `${integration.name} "${field.name}" must be ${field.format.description}`);
    }
    cleaned[field.name] = value;
  }
  return cleaned;
}

/** Hint key of an OAuth connection's account (its tokens are never hinted). */
export const OAUTH_ACCOUNT_HINT = "account";

/**
 * Display hint per credential field, computed when credentials are written:
 * masked for secret fields, in full for the others (e.g. a repository name).
 * Fields the integration does not declare (or an unknown service) are masked.
 * An OAuth integration's hints are its declared settings and a fixed account
 * hint ("Google account connected"): nothing derived from a token, not even
 * masked, whatever else the object holds.
 */
export function credentialHints(service: string, credentials: Credentials): Record<string, string> {
  const integration = findIntegration(service);
  if (integration?.oauth) {
    const hints: Record<string, string> = { [OAUTH_ACCOUNT_HINT]: integration.oauth.accountHint };
    for (const field of integration.credentialFields) {
      const value = credentials[field.name];
      if (value !== undefined && !field.secret) hints[field.name] = value;
    }
    return hints;
  }
  const fields = integration?.credentialFields ?? [];
  const isPublic = new Set(fields.filter((field) => !field.secret).map((field) => field.name));
  return Object.fromEntries(
    Object.entries(credentials).map(([name, value]) => [name, isPublic.has(name) ? value : maskSecret(value)]),
  );
}
