/** Provider credentials used only by tests, and checks that they never leak. */
import { afterEach, beforeEach, expect, vi, type MockInstance } from "vitest";
import { GOOGLE_PATHS, startFakeProviders, type FakeProviders, type FakeSecrets } from "./fakeProviders";

export const SECRETS: FakeSecrets = {
  stripeKey: "sk_test_51FakeStripeSecretKey0000000000000000000004242",
  githubToken: "ghp_FakeGitHubToken000000000000000000000001",
  githubRepository: "acme/widgets",
  plausibleKey: "plausible-fake-api-key-00000000000000000000000000000",
  plausibleSiteId: "acme.example",
  openaiKey: "sk-proj-FakeOpenAiKey00000000000000000000000000000001",
  anthropicKey: "sk-ant-api03-FakeAnthropicKey000000000000000000000001",
  googleClientId: "1234567890-fakeclient.apps.googleusercontent.com",
  googleClientSecret: "GOCSPX-FakeGoogleClientSecret000000001",
  gaPropertyId: "987654321",
};

/** Where the dashboard lives in tests; the OAuth callback redirects there. */
export const TEST_DASHBOARD_URL = "https://dashboard.test/settings/connections";
/** The deployment's HTTP actions URL in tests (CONVEX_SITE_URL). */
export const TEST_SITE_URL = "https://happy-otter-123.convex.site";

/** The secret values among SECRETS (repository and site id are not secret). */
export const SECRET_VALUES = [
  SECRETS.stripeKey,
  SECRETS.githubToken,
  SECRETS.plausibleKey,
  SECRETS.openaiKey,
  SECRETS.anthropicKey,
  SECRETS.googleClientSecret,
];

/**
 * Fails if any secret occurs in `value` (serialized) — return values, errors,
 * rows: SECRET_VALUES and `extra` (e.g. the tokens and codes the fake OAuth
 * server issued).
 */
export function expectNoSecrets(value: unknown, extra: readonly string[] = []): void {
  const text = value instanceof Error ? `${value.message} ${JSON.stringify(value)}` : JSON.stringify(value) ?? "";
  for (const secret of [...SECRET_VALUES, ...extra]) expect(text).not.toContain(secret);
}

/** Spies on every console method; `expectClean()` checks nothing logged a secret (nor any of `extra()`). */
export function spyOnConsole(extra: () => readonly string[] = () => []): { expectClean: () => void } {
  const spies: MockInstance[] = (["log", "info", "warn", "error", "debug"] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation(() => undefined),
  );
  return {
    expectClean: () => {
      for (const spy of spies) {
        for (const call of spy.mock.calls) {
          expectNoSecrets(
            call.map((arg) => (arg instanceof Error ? arg.message : arg)),
            extra(),
          );
        }
      }
    },
  };
}

/** Points every provider base URL (and Google's OAuth endpoints) at the fake and shortens the request timeout. */
export function useFakeProviderUrls(url: string, timeoutMs = 1_000): void {
  vi.stubEnv("GOOGLE_ANALYTICS_API_BASE_URL", url);
  vi.stubEnv("GOOGLE_OAUTH_AUTH_URL", `${url}${GOOGLE_PATHS.authorize}`);
  vi.stubEnv("GOOGLE_OAUTH_TOKEN_URL", `${url}${GOOGLE_PATHS.token}`);
  vi.stubEnv("GOOGLE_OAUTH_REVOKE_URL", `${url}${GOOGLE_PATHS.revoke}`);
  vi.stubEnv("GOOGLE_OAUTH_CLIENT_ID", SECRETS.googleClientId);
  vi.stubEnv("GOOGLE_OAUTH_CLIENT_SECRET", SECRETS.googleClientSecret);
  vi.stubEnv("CONVEX_SITE_URL", TEST_SITE_URL);
  vi.stubEnv("DASHBOARD_URL", TEST_DASHBOARD_URL);
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
    consoleSpy = spyOnConsole(() => fake?.oauth.issued ?? []);
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
