import { baseUrl, credentialValue, expectArray, expectNumber, expectObject, requestJson } from "./http";
import { ProviderError } from "./providerError";
import type { Integration } from "./types";

const NAME = "Plausible";
const DEFAULT_BASE_URL = "https://plausible.io";
const METRICS = ["visitors", "pageviews"] as const;

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
    { name: "apiKey", label: "API key", secret: true },
    { name: "siteId", label: "Site id (domain)", secret: false },
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
