import { baseUrl, credentialValue, expectArray, expectObject, expectString, requestJson } from "../transport";
import { ProviderError } from "../errors";
import type { Integration } from "./types";

const NAME = "Google Analytics";
const DEFAULT_API_BASE_URL = "https://analyticsdata.googleapis.com";
/** GA4 property ids are numeric ("properties/123456789" in the API). */
const PROPERTY_ID_PATTERN = /^[0-9]{1,20}$/;
/** Data API metric → Dashtray metric name. */
const METRICS = [
  ["activeUsers", "active_users"],
  ["sessions", "sessions"],
  ["screenPageViews", "page_views"],
] as const;

/**
 * Google Analytics 4 over OAuth 2.0: active users, sessions and page views
 * of one property for the current day (in the property's time zone) so far,
 * one Data API request (POST /v1beta/properties/{id}:runReport). The last
 * point stored on a day holds that day's totals.
 */
export const googleAnalytics: Integration = {
  id: "google_analytics",
  name: NAME,
  credentialFields: [
    {
      name: "propertyId",
      label: "GA4 property id",
      secret: false,
      format: { pattern: PROPERTY_ID_PATTERN, description: "the numeric GA4 property id, e.g. 123456789" },
    },
  ],
  oauth: {
    providerName: "Google",
    authorizationEndpoint: { envName: "GOOGLE_OAUTH_AUTH_URL", defaultUrl: "https://accounts.google.com/o/oauth2/v2/auth" },
    tokenEndpoint: { envName: "GOOGLE_OAUTH_TOKEN_URL", defaultUrl: "https://oauth2.googleapis.com/token" },
    revocationEndpoint: { envName: "GOOGLE_OAUTH_REVOKE_URL", defaultUrl: "https://oauth2.googleapis.com/revoke" },
    clientIdEnv: "GOOGLE_OAUTH_CLIENT_ID",
    clientSecretEnv: "GOOGLE_OAUTH_CLIENT_SECRET",
    // "openid": the token answer then carries an ID token naming the Google account (`sub`), so that a grant is
    // revoked only when no other connection holds the same account (Google ends every token of one account and
    // client at once: oauth/accounts.ts). On its own it gives access to nothing but that id.
    scopes: ["openid", "https://www.googleapis.com/auth/analytics.readonly"],
    // Google's ID tokens name either form of its issuer (its OpenID Connect guide, "Validating an ID token").
    idTokenIssuers: ["https://accounts.google.com", "accounts.google.com"],
    // A refresh token is only issued for offline access, and again on re-consent only with prompt=consent.
    // No include_granted_scopes: the tokens carry this scope only, not every scope the user ever granted the client.
    extraAuthorizationParams: { access_type: "offline", prompt: "consent" },
    accountHint: "Google account connected",
  },

  async fetchMetrics(credentials) {
    const accessToken = credentialValue(NAME, credentials, "accessToken");
    const propertyId = credentialValue(NAME, credentials, "propertyId");
    // Checked on write too; never put an unchecked value in the path.
    if (!PROPERTY_ID_PATTERN.test(propertyId)) throw new ProviderError(NAME, "invalid_request");
    const url = `${baseUrl("GOOGLE_ANALYTICS_API_BASE_URL", DEFAULT_API_BASE_URL)}/v1beta/properties/${propertyId}:runReport`;
    const report = expectObject(
      NAME,
      await requestJson(NAME, url, {
        method: "POST",
        headers: { Authorization: `Bearer ${accessToken}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          dateRanges: [{ startDate: "today", endDate: "today" }],
          metrics: METRICS.map(([apiName]) => ({ name: apiName })),
        }),
      }),
    );
    // Values come in the order of metricHeaders; a day without data has no rows.
    const headers = expectArray(NAME, report.metricHeaders ?? []).map((header) => expectString(NAME, expectObject(NAME, header).name));
    const rows = report.rows === undefined ? [] : expectArray(NAME, report.rows);
    const values = rows.length === 0 ? [] : expectArray(NAME, expectObject(NAME, rows[0]).metricValues);
    return METRICS.map(([apiName, name]) => {
      if (rows.length === 0) return { name, value: 0 };
      const index = headers.indexOf(apiName);
      if (index < 0) throw new ProviderError(NAME, "bad_response");
      const value = Number(expectString(NAME, expectObject(NAME, values[index]).value));
      if (!Number.isFinite(value)) throw new ProviderError(NAME, "bad_response");
      return { name, value };
    });
  },
};
