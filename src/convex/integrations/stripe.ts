import { baseUrl, credentialValue, expectArray, expectNumber, expectObject, expectString, requestJson } from "./http";
import { ProviderError } from "./providerError";
import type { Integration, MetricPoint } from "./types";

const NAME = "Stripe";
const DEFAULT_BASE_URL = "https://api.stripe.com";

/**
 * Stripe: the account balance, one request (GET /v1/balance). Metrics
 * `balance.available.<currency>` and `balance.pending.<currency>` hold
 * amounts in the currency's smallest unit (cents for usd), as Stripe does.
 */
export const stripe: Integration = {
  id: "stripe",
  name: NAME,
  credentialFields: [
    {
      name: "secretKey",
      label: "Secret key (sk_… or rk_…)",
      secret: true,
      // Stripe's random part is 24 characters in its oldest keys and about 99 in current ones.
      format: {
        pattern: /^[sr]k_(live|test)_[A-Za-z0-9]{24,}$/,
        description: "a secret (sk_…) or restricted (rk_…) key: sk_live_, sk_test_, rk_live_ or rk_test_ and at least 24 letters or digits",
      },
    },
  ],

  async fetchMetrics(credentials) {
    const secretKey = credentialValue(NAME, credentials, "secretKey");
    const url = `${baseUrl("STRIPE_API_BASE_URL", DEFAULT_BASE_URL)}/v1/balance`;
    const balance = expectObject(NAME, await requestJson(NAME, url, { headers: { Authorization: `Bearer ${secretKey}` } }));
    return [...balancePoints(balance, "available"), ...balancePoints(balance, "pending")];
  },
};

/** One point per currency of balance.available or balance.pending (amounts summed by currency). */
function balancePoints(balance: Record<string, unknown>, bucket: "available" | "pending"): MetricPoint[] {
  const totals = new Map<string, number>();
  for (const entry of expectArray(NAME, balance[bucket])) {
    const funds = expectObject(NAME, entry);
    const currency = expectString(NAME, funds.currency);
    if (!/^[a-z]{3}$/.test(currency)) throw new ProviderError(NAME, "bad_response");
    totals.set(currency, (totals.get(currency) ?? 0) + expectNumber(NAME, funds.amount));
  }
  return [...totals].map(([currency, amount]) => ({ name: `balance.${bucket}.${currency}`, value: amount }));
}
