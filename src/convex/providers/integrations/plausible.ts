import { baseUrl, credentialValue, expectArray, expectNumber, expectObject, requestJson } from "../transport";
import { ProviderError } from "../errors";
import type { Integration } from "./types";

const NAME = "Plausible";
const DEFAULT_BASE_URL = "https://plausible.io";
const METRICS = ["visitors", "pageviews"] as const;
/** Plausible API keys: 64 URL-safe characters today; at least 32 are required. */
const API_KEY_PATTERN = /^[A-Za-z0-9_-]{32,}$/;
/**
 * A site id is the domain the site was added with: dot-separated labels of
 * letters, digits and inner hyphens (internationalised domains in their
 * xn-- form), at least two labels, 253 characters at most.
 */
const SITE_ID_PATTERN = /^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** An ISO 8601 UTC date-time without milliseconds, as the Stats API v2 date_range accepts. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

/**
 * Plausible Analytics: visitors and pageviews of one site over the sync
 * range, one Stats API v2 query (POST /api/v2/query, no dimensions).
 */
export const plausible: Integration = {
  id: "plausible",
  name: NAME,
  credentialFields: [
    {
      name: "apiKey",
      label: "API key",
      secret: true,
      format: { pattern: API_KEY_PATTERN, description: "a Plausible API key: at least 32 letters, digits, - or _" },
    },
    {
      name: "siteId",
      label: "Site id (domain)",
      secret: false,
      format: { pattern: SITE_ID_PATTERN, description: "the site's domain as added in Plausible, e.g. example.com" },
    },
  ],

  async fetchMetrics(credentials, range) {
    const apiKey = credentialValue(NAME, credentials, "apiKey");
    const siteId = credentialValue(NAME, credentials, "siteId");
    const url = `${baseUrl("PLAUSIBLE_API_BASE_URL", DEFAULT_BASE_URL)}/api/v2/query`;
    const answer = expectObject(
      NAME,
      await requestJson(NAME, url, {
        method: "POST",
        headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          site_id: siteId,
          metrics: METRICS,
          date_range: [isoSeconds(range.from), isoSeconds(range.to)],
        }),
      }),
    );
    const rows = expectArray(NAME, answer.results);
    // Without dimensions there is one row; a site with no data may answer none.
    const values = rows.length === 0 ? METRICS.map(() => 0) : expectArray(NAME, expectObject(NAME, rows[0]).metrics);
    if (values.length !== METRICS.length) throw new ProviderError(NAME, "bad_response");
    return METRICS.map((name, index) => ({ name, value: expectNumber(NAME, values[index]) }));
  },
};
