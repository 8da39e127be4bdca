/** Provider credentials used only by tests, and checks that they never leak. */
import { afterEach, beforeEach, expect, vi, type MockInstance } from "vitest";
import { startFakeProviders, type FakeProviders, type FakeSecrets } from "./fakeProviders";

export const SECRETS: FakeSecrets = {
  stripeKey: "sk_test_51FakeStripeSecretKey0000000000000000000004242",
  githubToken: "ghp_FakeGitHubToken000000000000000000000001",
  githubRepository: "acme/widgets",
  plausibleKey: "plausible-fake-api-key-00000000000000000000000000000",
  plausibleSiteId: "acme.example",
  openaiKey: "sk-proj-FakeOpenAiKey00000000000000000000000000000001",
  anthropicKey: "sk-ant-api03-FakeAnthropicKey000000000000000000000001",
};

/** The secret values among SECRETS (repository and site id are not secret). */
export const SECRET_VALUES = [
  SECRETS.stripeKey,
  SECRETS.githubToken,
  SECRETS.plausibleKey,
  SECRETS.openaiKey,
  SECRETS.anthropicKey,
];

/** Fails if any secret occurs in `value` (serialized) — return values, errors, rows. */
export function expectNoSecrets(value: unknown): void {
  const text = value instanceof Error ? `${value.message} ${JSON.stringify(value)}` : JSON.stringify(value) ?? "";
  for (const secret of SECRET_VALUES) expect(text).not.toContain(secret);
}

/** Spies on every console method; `expectClean()` checks nothing logged a secret. */
export function spyOnConsole(): { expectClean: () => void } {
  const spies: MockInstance[] = (["log", "info", "warn", "error", "debug"] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation(() => undefined),
  );
  return {
    expectClean: () => {
      for (const spy of spies) {
        for (const call of spy.mock.calls) expectNoSecrets(call.map((arg) => (arg instanceof Error ? arg.message : arg)));
      }
    },
  };
}

/** Points every provider base URL at the fake and shortens the request timeout. */
export function useFakeProviderUrls(url: string, timeoutMs = 1_000): void {
  for (const name of [
    "STRIPE_API_BASE_URL",
    "GITHUB_API_BASE_URL",
    "PLAUSIBLE_API_BASE_URL",
    "OPENAI_API_BASE_URL",
    "ANTHROPIC_API_BASE_URL",
  ]) {
    vi.stubEnv(name, url);
  }
  vi.stubEnv("PROVIDER_TIMEOUT_MS", String(timeoutMs));
}

/**
 * Registers per-test hooks: a fresh fake provider server with every base URL
 * pointed at it, and a console spy checked for secrets after each test.
 * Returns the running fake.
 */
export function useFakeProviders(): () => FakeProviders {
  let fake: FakeProviders | undefined;
  let consoleSpy: ReturnType<typeof spyOnConsole>;
  beforeEach(async () => {
    fake = await startFakeProviders(SECRETS);
    useFakeProviderUrls(fake.url, 1_000);
    consoleSpy = spyOnConsole();
  });
  afterEach(async () => {
    consoleSpy.expectClean();
    vi.useRealTimers();
    vi.restoreAllMocks();
    await fake?.close();
  });
  return () => {
    if (!fake) throw new Error("useFakeProviders: no fake server outside a test");
    return fake;
  };
}
