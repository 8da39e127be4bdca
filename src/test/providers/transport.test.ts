// The one HTTP transport (src/convex/providers/transport.ts), called directly
// against a local server: redirects refused, bodies bounded, timeouts, and
// every failure a ProviderError whose message holds nothing of the exchange,
// with a cause only where it cannot quote a body. End-to-end behaviour through
// the integrations, the AI providers and the OAuth client is in
// metricsSync.test.ts, stripeMrr.test.ts, ai.test.ts and oauth/.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from "vitest";
import { ProviderError } from "../../convex/providers/errors";
import { send, requestJson, providerTimeoutMs, DEFAULT_PROVIDER_TIMEOUT_MS } from "../../convex/providers/transport";

const SECRET = "sk_live_transportSecret0000000000004242";
const SERVICE = "Example";

let origin = "";
/** Paths the server was asked for, in order. */
const requested: string[] = [];

const routes: Record<string, (response: ServerResponse) => void> = {
  "/ok": (response) => json(response, 200, { ok: true }),
  "/redirect": (response) => {
    response.writeHead(302, { Location: `${origin}/elsewhere` });
    response.end();
  },
  "/elsewhere": (response) => json(response, 200, { followed: true }),
  "/echo-401": (response) => json(response, 401, { error: { message: `Invalid API key: ${SECRET}` } }),
  "/not-json": (response) => {
    // V8's SyntaxError for this text would quote it: the error must not keep it.
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(`{"token": "${SECRET}"`);
  },
  "/big": (response) => {
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ padding: "x".repeat(2_000) }));
  },
  "/slow": () => undefined,
  "/oauth-400": (response) => json(response, 400, { error: "invalid_grant", error_description: `token ${SECRET} expired` }),
};

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "Content-Type": "application/json" });
  response.end(JSON.stringify(body));
}

const server = createServer((request: IncomingMessage, response: ServerResponse) => {
  requested.push(request.url ?? "");
  (routes[request.url ?? ""] ?? ((r: ServerResponse) => json(r, 404, {})))(response);
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requested.length = 0;
  vi.stubEnv("PROVIDER_TIMEOUT_MS", "300");
});

/** The ProviderError `promise` rejects with (fails the test if it resolves or rejects with anything else). */
async function providerErrorOf(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a ProviderError");
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ProviderError);
  const providerError = error as ProviderError;
  expect(`${providerError.message} ${providerError.stack ?? ""}`).not.toContain(SECRET);
  return providerError;
}

const headers = { Authorization: `Bearer ${SECRET}` };

test("a 2xx JSON answer is parsed", async () => {
  expect(await requestJson(SERVICE, `${origin}/ok`, { headers })).toEqual({ ok: true });
});

test("a redirect is refused, never followed (the credential headers stay with the configured host)", async () => {
  const error = await providerErrorOf(requestJson(SERVICE, `${origin}/redirect`, { headers }));
  expect(error).toMatchObject({ kind: "redirected", status: 302, message: "Example redirected the request elsewhere (not followed) (HTTP 302)" });
  expect(requested).toEqual(["/redirect"]);
});

test("an error body is not read into the error, even when it echoes the key", async () => {
  const error = await providerErrorOf(requestJson(SERVICE, `${origin}/echo-401`, { headers }));
  expect(error).toMatchObject({ kind: "unauthorized", status: 401, message: "Example rejected the credentials (HTTP 401)" });
  expect(error.cause).toBeUndefined();
});

test("a 2xx body that is not JSON is bad_response, without the SyntaxError (its message quotes the body)", async () => {
  const error = await providerErrorOf(requestJson(SERVICE, `${origin}/not-json`, { headers }));
  expect(error).toMatchObject({ kind: "bad_response", status: 200 });
  expect(error.cause).toBeUndefined();
});

test("a body over the cap is bad_response", async () => {
  const error = await providerErrorOf(send(SERVICE, `${origin}/big`, { headers }, { maxBytes: 1_000 }));
  expect(error).toMatchObject({ kind: "bad_response", status: 200 });
  expect((await send(SERVICE, `${origin}/big`, { headers }, { maxBytes: 3_000 })).status).toBe(200);
});

test("no answer within PROVIDER_TIMEOUT_MS is timeout, with the abort as its cause", async () => {
  const error = await providerErrorOf(requestJson(SERVICE, `${origin}/slow`, { headers }));
  expect(error).toMatchObject({ kind: "timeout", status: null, message: "Example did not answer in time" });
  expect(error.cause).toBeInstanceOf(Error);
});

test("an unreachable host is unavailable, with the network error as its cause", async () => {
  const error = await providerErrorOf(requestJson(SERVICE, "http://127.0.0.1:9/v1", { headers }));
  expect(error).toMatchObject({ kind: "unavailable", status: null, message: "Example is unavailable" });
  expect(error.cause).toBeInstanceOf(Error);
});

/** Every message, stack and String() of `error` and its causes, recursively. */
function everythingSaid(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return `${String(error)} ${error.message} ${error.stack ?? ""} ${error.cause === undefined ? "" : everythingSaid(error.cause)}`;
}

test("a credential fetch cannot put in a header is invalid_request, quoting nothing of it", async () => {
  for (const breaker of ["\n", "\r\n", "\0"]) {
    const error = await providerErrorOf(requestJson(SERVICE, `${origin}/ok`, { headers: { Authorization: `Bearer ${SECRET}${breaker}x` } }));
    expect(error).toMatchObject({ kind: "invalid_request", status: null });
    expect(everythingSaid(error)).not.toMatch(/sk_live|transportSecret|Bearer/);
  }
  expect(requested).toEqual([]);
});

test("a fetch failure's message never reaches the cause (Headers quotes what it refuses)", async () => {
  // An invalid header name: Node's TypeError quotes it whole.
  const error = await providerErrorOf(requestJson(SERVICE, `${origin}/ok`, { headers: { [`X-Key ${SECRET}`]: "1" } }));
  expect(error).toMatchObject({ kind: "unavailable", status: null });
  expect(error.cause).toBeInstanceOf(Error);
  expect(everythingSaid(error)).not.toMatch(/sk_live|transportSecret/);
  const unreachable = await providerErrorOf(requestJson(SERVICE, "http://127.0.0.1:9/v1", { headers }));
  // Port 9 is a fetch "bad port": a TypeError whose cause has no system code.
  expect((unreachable.cause as Error).message).toBe("TypeError");
});

test("errorKindFromBody reads an error body (bounded) and may name the kind; only its answer is kept", async () => {
  const seen: Array<string | null> = [];
  const error = await providerErrorOf(
    send(SERVICE, `${origin}/oauth-400`, { method: "POST", body: "grant_type=refresh_token" }, {
      errorKindFromBody: (status, text) => {
        seen.push(text);
        return status === 400 && text?.includes('"invalid_grant"') ? "invalid_grant" : null;
      },
    }),
  );
  expect(error).toMatchObject({ kind: "invalid_grant", status: 400 });
  expect(seen).toHaveLength(1);
  expect(error.cause).toBeUndefined();
});

test("nothing is logged, whatever fails", async () => {
  const spies = (["log", "info", "warn", "error", "debug"] as const).map((method) => vi.spyOn(console, method));
  for (const path of ["/redirect", "/echo-401", "/not-json", "/slow"]) {
    await requestJson(SERVICE, `${origin}${path}`, { headers }).catch(() => undefined);
  }
  for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  for (const spy of spies) spy.mockRestore();
});

describe("providerTimeoutMs", () => {
  test.each([
    ["", DEFAULT_PROVIDER_TIMEOUT_MS],
    ["2500", 2_500],
    ["0", DEFAULT_PROVIDER_TIMEOUT_MS],
    ["-5", DEFAULT_PROVIDER_TIMEOUT_MS],
    ["ten", DEFAULT_PROVIDER_TIMEOUT_MS],
  ])("PROVIDER_TIMEOUT_MS=%j gives %d ms", (value, expected) => {
    vi.stubEnv("PROVIDER_TIMEOUT_MS", value);
    expect(providerTimeoutMs()).toBe(expected);
  });
});
