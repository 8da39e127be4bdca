// Stripe MRR and active subscriptions against the local fake: paging with
// starting_after/has_more, normalisation of every interval to a month, per
// currency, and the cases where a sum would be wrong (no MRR points then).
import { expect, test } from "vitest";
import { api } from "../../../convex/_generated/api";
import type { Id } from "../../../convex/_generated/dataModel";
import { MAX_SUBSCRIPTION_PAGES, SUBSCRIPTIONS_PAGE_SIZE } from "../../../convex/providers/integrations/stripe";
import { newBackend, type Backend } from "../../helpers/convex";
import { signIn } from "../../helpers/api";
import type { FakeSubscription } from "../../helpers/fakeProviders";
import { SECRETS, expectNoSecrets, useFakeProviders } from "../../helpers/secrets";
import { seedConnection, seedProject } from "../../helpers/seed";

const fake = useFakeProviders();

async function syncStripe(t: Backend): Promise<{ connectionId: Id<"connections">; values: Record<string, number> }> {
  const { projectId } = await seedProject(t, { alice: "owner" });
  const alice = await signIn(t, "alice");
  const connectionId = await seedConnection(t, projectId, "stripe", { secretKey: SECRETS.stripeKey });
  const result = await alice.action(api.connections.syncMetrics, { connectionId });
  expectNoSecrets(result);
  expect(result.status).toBe("active");
  const metrics = await t.run((ctx) =>
    ctx.db
      .query("metrics")
      .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connectionId))
      .collect(),
  );
  return { connectionId, values: Object.fromEntries(metrics.map((m) => [m.name, m.value])) };
}

function monthly(id: string, unitAmount: number | null, interval: "day" | "week" | "month" | "year", intervalCount = 1, quantity = 1, currency = "usd"): FakeSubscription {
  return { id, items: [{ quantity, price: { unit_amount: unitAmount, currency, recurring: { interval, interval_count: intervalCount } } }] };
}

test("MRR normalises day, week, month and year prices × interval_count × quantity, per currency", async () => {
  const t = newBackend();
  fake().values.stripe.subscriptions = [
    monthly("sub_day", 100, "day", 1, 1), // 1.00/day → 365/12 days → 3041.67
    monthly("sub_week", 1200, "week", 2, 1), // 12.00 every 2 weeks → 26 per year → 2600.00
    monthly("sub_month", 500, "month", 1, 3), // 3 × 5.00 → 15.00
    monthly("sub_year", 24_000, "year", 2, 1), // 240.00 every 2 years → 10.00
    monthly("sub_jpy", 1200, "month", 1, 1, "jpy"), // zero-decimal currency: 1200 yen
    monthly("sub_tiered", null, "month"), // no fixed unit amount: adds nothing, still counted
  ];

  const { values } = await syncStripe(t);

  expect(values["mrr.usd"]).toBe(Math.round((100 * 365) / 12 + (1200 * 52) / 24 + 1500 + 1000));
  expect(values["mrr.jpy"]).toBe(1200);
  expect(values["subscriptions.active"]).toBe(6);
  expect(values["balance.available.usd"]).toBe(1_234_567);
  const subscriptionRequests = fake().requests.filter((request) => request.route === "stripe.subscriptions");
  expect(subscriptionRequests).toHaveLength(1);
  expect(new URLSearchParams(subscriptionRequests[0]!.query).get("status")).toBe("active");
  expect(subscriptionRequests[0]!.headers.authorization).toBe(`Bearer ${SECRETS.stripeKey}`);
});

test("pages with starting_after until has_more is false", async () => {
  const t = newBackend();
  const count = SUBSCRIPTIONS_PAGE_SIZE * 2 + 5;
  fake().values.stripe.subscriptions = Array.from({ length: count }, (_, i) => monthly(`sub_${i}`, 1000, "month"));

  const { values } = await syncStripe(t);

  expect(values["subscriptions.active"]).toBe(count);
  expect(values["mrr.usd"]).toBe(count * 1000);
  const pages = fake().requests.filter((request) => request.route === "stripe.subscriptions");
  expect(pages.map((request) => new URLSearchParams(request.query).get("starting_after"))).toEqual([
    null,
    `sub_${SUBSCRIPTIONS_PAGE_SIZE - 1}`,
    `sub_${SUBSCRIPTIONS_PAGE_SIZE * 2 - 1}`,
  ]);
});

test("more pages than the bound, or a truncated item list: no MRR points rather than a wrong sum; balance still stored", async () => {
  const t = newBackend();
  fake().values.stripe.subscriptions = Array.from({ length: SUBSCRIPTIONS_PAGE_SIZE * MAX_SUBSCRIPTION_PAGES + 1 }, (_, i) =>
    monthly(`sub_${i}`, 1000, "month"),
  );
  const { values } = await syncStripe(t);
  expect(fake().requests.filter((request) => request.route === "stripe.subscriptions")).toHaveLength(MAX_SUBSCRIPTION_PAGES);
  expect(Object.keys(values).filter((name) => !name.startsWith("balance."))).toEqual([]);

  const t2 = newBackend();
  fake().values.stripe.subscriptions = [{ ...monthly("sub_many", 1000, "month"), itemsHasMore: true }];
  const second = await syncStripe(t2);
  expect(second.values["mrr.usd"]).toBeUndefined();
  expect(second.values["balance.available.usd"]).toBe(1_234_567);
});

test("a restricted key without subscription access (403) still syncs the balance", async () => {
  const t = newBackend();
  fake().setMode("stripe.subscriptions", 403);
  const { values } = await syncStripe(t);
  expect(values["balance.available.usd"]).toBe(1_234_567);
  expect(values["subscriptions.active"]).toBeUndefined();
});
