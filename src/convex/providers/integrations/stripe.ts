import { baseUrl, credentialValue, expectArray, expectNumber, expectObject, expectString, requestJson } from "../transport";
import { ProviderError } from "../errors";
import type { Integration, MetricPoint } from "./types";

const NAME = "Stripe";
const DEFAULT_BASE_URL = "https://api.stripe.com";
/** Subscriptions per page (Stripe's maximum). */
export const SUBSCRIPTIONS_PAGE_SIZE = 100;
/** Most subscription pages one sync reads: up to 2,000 active subscriptions. */
export const MAX_SUBSCRIPTION_PAGES = 20;
/** Months per billing interval unit (a year of 365 days, 52 weeks). */
const MONTHS_PER_UNIT: Record<string, number> = { day: 12 / 365, week: 12 / 52, month: 1, year: 12 };

/**
 * Stripe: the account balance (GET /v1/balance) and the recurring revenue
 * of active subscriptions (GET /v1/subscriptions?status=active, paginated).
 * Metrics `balance.available.<currency>`, `balance.pending.<currency>` and
 * `mrr.<currency>` hold amounts in the currency's smallest unit (cents for
 * usd), as Stripe does; `subscriptions.active` counts subscriptions.
 *
 * MRR is each active subscription item's price normalised to a month
 * (unit_amount × quantity ÷ (interval_count × months per interval)), summed
 * per currency and rounded: list prices before discounts, taxes and
 * prorations. Items whose price has no fixed unit amount (metered or tiered
 * prices) add nothing. If an account has more than MAX_SUBSCRIPTION_PAGES
 * pages of subscriptions, or a subscription more items than its first page
 * lists, a sum would be wrong: the sync then reports no MRR and no count,
 * only the balance. So does a restricted key without read access to
 * subscriptions (HTTP 403).
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
    const headers = { Authorization: `Bearer ${secretKey}` };
    const balance = expectObject(NAME, await requestJson(NAME, url, { headers }));
    return [
      ...balancePoints(balance, "available"),
      ...balancePoints(balance, "pending"),
      ...(await subscriptionPoints(headers)),
    ];
  },
};

/** Monthly recurring revenue of one subscription item per currency, or null when its price has no fixed amount. */
function itemMonthlyAmount(item: Record<string, unknown>): { currency: string; amount: number } | null {
  const price = expectObject(NAME, item.price);
  const recurring = price.recurring === null || price.recurring === undefined ? null : expectObject(NAME, price.recurring);
  if (!recurring || recurring.usage_type === "metered") return null;
  if (price.unit_amount === null || price.unit_amount === undefined) return null;
  const unitAmount = expectNumber(NAME, price.unit_amount);
  const currency = expectString(NAME, price.currency);
  if (!/^[a-z]{3}$/.test(currency)) throw new ProviderError(NAME, "bad_response");
  const monthsPerUnit = MONTHS_PER_UNIT[expectString(NAME, recurring.interval)];
  const intervalCount = expectNumber(NAME, recurring.interval_count ?? 1);
  if (monthsPerUnit === undefined || intervalCount <= 0) throw new ProviderError(NAME, "bad_response");
  const quantity = item.quantity === undefined || item.quantity === null ? 1 : expectNumber(NAME, item.quantity);
  return { currency, amount: (unitAmount * quantity) / (intervalCount * monthsPerUnit) };
}

/** `mrr.<currency>` and `subscriptions.active` from every page of active subscriptions, or none if incomplete. */
async function subscriptionPoints(headers: Record<string, string>): Promise<MetricPoint[]> {
  const base = `${baseUrl("STRIPE_API_BASE_URL", DEFAULT_BASE_URL)}/v1/subscriptions`;
  const mrr = new Map<string, number>();
  let active = 0;
  let startingAfter: string | null = null;
  for (let page = 0; page < MAX_SUBSCRIPTION_PAGES; page++) {
    const query = new URLSearchParams({ status: "active", limit: String(SUBSCRIPTIONS_PAGE_SIZE) });
    if (startingAfter) query.set("starting_after", startingAfter);
    let list: Record<string, unknown>;
    try {
      list = expectObject(NAME, await requestJson(NAME, `${base}?${query.toString()}`, { headers }));
    } catch (error) {
      // A restricted key without the subscriptions permission still syncs the balance.
      if (error instanceof ProviderError && error.status === 403) return [];
      throw error;
    }
    const subscriptions = expectArray(NAME, list.data);
    for (const entry of subscriptions) {
      const subscription = expectObject(NAME, entry);
      const items = expectObject(NAME, subscription.items);
      if (items.has_more === true) return [];
      for (const item of expectArray(NAME, items.data)) {
        const monthly = itemMonthlyAmount(expectObject(NAME, item));
        if (monthly) mrr.set(monthly.currency, (mrr.get(monthly.currency) ?? 0) + monthly.amount);
      }
      active++;
    }
    if (list.has_more !== true) {
      return [
        ...[...mrr].map(([currency, amount]) => ({ name: `mrr.${currency}`, value: Math.round(amount) })),
        { name: "subscriptions.active", value: active },
      ];
    }
    const last = subscriptions.at(-1);
    if (last === undefined) throw new ProviderError(NAME, "bad_response");
    startingAfter = expectString(NAME, expectObject(NAME, last).id);
  }
  // More than MAX_SUBSCRIPTION_PAGES pages: a partial sum would understate MRR.
  return [];
}

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
