import { afterEach, expect, test, vi } from "vitest";

// setup.ts stubs the master keys again before each test.
afterEach(() => {
  vi.unstubAllEnvs();
});

async function loadAuthConfig() {
  vi.resetModules();
  return (await import("../convex/auth.config")).default;
}

test("no identity provider is trusted until both variables are set", async () => {
  vi.stubEnv("AUTH_ISSUER_URL", "");
  vi.stubEnv("AUTH_APPLICATION_ID", "");
  expect((await loadAuthConfig()).providers).toEqual([]);
  vi.stubEnv("AUTH_ISSUER_URL", "https://issuer.example.test");
  expect((await loadAuthConfig()).providers).toEqual([]);
});

test("the OIDC issuer and application id come from the deployment's environment", async () => {
  vi.stubEnv("AUTH_ISSUER_URL", "https://issuer.example.test");
  vi.stubEnv("AUTH_APPLICATION_ID", "dashtray");
  expect((await loadAuthConfig()).providers).toEqual([
    { domain: "https://issuer.example.test", applicationID: "dashtray" },
  ]);
});

test("unset variables that throw when read (as in Convex's auth-config evaluation) leave no provider, not a failed push", async () => {
  vi.resetModules();
  vi.doMock("../convex/_generated/server", () => ({
    env: new Proxy(
      {},
      {
        get(_target, name) {
          throw new Error(`Environment variable ${String(name)} is used in auth config file but its value was not set`);
        },
      },
    ),
  }));
  try {
    expect((await import("../convex/auth.config")).default.providers).toEqual([]);
  } finally {
    vi.doUnmock("../convex/_generated/server");
  }
});
