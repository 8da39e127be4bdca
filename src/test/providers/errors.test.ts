// ProviderError (src/convex/providers/errors.ts) and its mapping to the client's
// PROVIDER_ERROR (errors.ts providerAppError).
import { ConvexError } from "convex/values";
import { expect, test } from "vitest";
import { appErrorData, providerAppError } from "../../convex/errors";
import { ProviderError, kindForStatus } from "../../convex/providers/errors";

test("a ProviderError's message is built from the service, the kind and the status alone", () => {
  const network = new TypeError("connection refused");
  const error = new ProviderError("Stripe", "unavailable", null, { cause: network });
  expect(error.message).toBe("Stripe is unavailable");
  expect(error.cause).toBe(network);
  expect(new ProviderError("GitHub", "unauthorized", 401).message).toBe("GitHub rejected the credentials (HTTP 401)");
  expect(new ProviderError("GitHub", "unauthorized", 401).cause).toBeUndefined();
});

test.each([
  [200, null],
  [302, "redirected"],
  [401, "unauthorized"],
  [403, "unauthorized"],
  [404, "not_found"],
  [429, "rate_limited"],
  [400, "invalid_request"],
  [503, "unavailable"],
])("HTTP %d is %s", (status, kind) => {
  expect(kindForStatus(status)).toBe(kind);
});

test("providerAppError: PROVIDER_ERROR with the same message, service, kind and status; the ProviderError as a server-side cause", () => {
  const providerError = new ProviderError("OpenAI", "rate_limited", 429);
  const mapped = providerAppError(providerError);
  expect(mapped).toBeInstanceOf(ConvexError);
  expect(appErrorData(mapped)).toEqual({
    code: "PROVIDER_ERROR",
    message: "OpenAI is rate limiting requests; try again later (HTTP 429)",
    service: "OpenAI",
    reason: "rate_limited",
    status: 429,
  });
  expect(mapped.cause).toBe(providerError);
  expect(Object.keys(mapped)).not.toContain("cause");
  expect(appErrorData(providerAppError(new ProviderError("OpenAI", "timeout")))).not.toHaveProperty("status");
});
