/**
 * A local HTTP server (127.0.0.1, random port) that answers like Stripe,
 * GitHub, Plausible, OpenAI and Anthropic, so actions run their real fetch
 * code. It checks the auth headers it receives against the secrets it was
 * started with and answers 401 (echoing the received key, as real providers
 * partly do) when they differ. A route can be switched to a failure mode.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";

export interface FakeSecrets {
  stripeKey: string;
  githubToken: string;
  githubRepository: string;
  plausibleKey: string;
  plausibleSiteId: string;
  openaiKey: string;
  anthropicKey: string;
}

export type Route =
  | "stripe.balance"
  | "github.repo"
  | "plausible.query"
  | "openai.chat"
  | "openai.models"
  | "anthropic.messages"
  | "anthropic.models";

/**
 * "ok" answers normally; a number forces that status; "slow" never answers in time; "huge" streams a
 * HUGE_BODY_BYTES JSON body without Content-Length, "huge_declared" the same with its Content-Length.
 */
export type Mode =
  | "ok"
  | 401
  | 403
  | 404
  | 429
  | 500
  | 503
  | "slow"
  | "invalid_json"
  | "wrong_shape"
  | "redirect"
  | "huge"
  | "huge_declared";

/** Size of the body the "huge" modes serve: 30 MB. */
export const HUGE_BODY_BYTES = 30_000_000;

export interface RecordedRequest {
  route: Route | null;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The values the fake services report; tests change them between syncs. */
export interface FakeValues {
  stripe: { available: { amount: number; currency: string }[]; pending: { amount: number; currency: string }[] };
  github: { stars: number; forks: number; openIssues: number; watchers: number };
  plausible: { visitors: number; pageviews: number };
  insightText: string;
}

export interface FakeProviders {
  /** Base URL for every *_API_BASE_URL variable. */
  url: string;
  requests: RecordedRequest[];
  values: FakeValues;
  setMode(route: Route, mode: Mode): void;
  /** Bytes of "huge" bodies the server managed to hand to the socket (it waits while the client does not read). */
  hugeBytesSent(): number;
  close(): Promise<void>;
}

const SLOW_RESPONSE_MS = 5_000;

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "Content-Type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

function bearer(headers: IncomingHttpHeaders): string {
  return (headers.authorization ?? "").replace(/^Bearer /, "");
}

function route(method: string, path: string, headers: IncomingHttpHeaders): Route | null {
  if (method === "GET" && path === "/v1/balance") return "stripe.balance";
  if (method === "GET" && /^\/repos\/[^/]+\/[^/]+$/.test(path)) return "github.repo";
  if (method === "POST" && path === "/api/v2/query") return "plausible.query";
  if (method === "POST" && path === "/v1/chat/completions") return "openai.chat";
  if (method === "POST" && path === "/v1/messages") return "anthropic.messages";
  if (method === "GET" && path === "/v1/models") return headers["x-api-key"] ? "anthropic.models" : "openai.models";
  return null;
}

/** A 401 body in the provider's own format, quoting the key it received. */
function unauthorized(response: ServerResponse, which: Route, received: string): void {
  if (which.startsWith("stripe")) {
    json(response, 401, {
      error: { message: `Invalid API Key provided: ${received}`, type: "invalid_request_error" },
    });
  } else if (which.startsWith("github")) {
    json(response, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
  } else if (which.startsWith("plausible")) {
    json(response, 401, { error: `Invalid API key: ${received}` });
  } else if (which.startsWith("openai")) {
    json(response, 401, {
      error: { message: `Incorrect API key provided: ${received}.`, type: "invalid_request_error", code: "invalid_api_key" },
    });
  } else {
    json(response, 401, { type: "error", error: { type: "authentication_error", message: `invalid x-api-key ${received}` } });
  }
}

/** Starts the fake on 127.0.0.1 with an OS-assigned port. */
export async function startFakeProviders(secrets: FakeSecrets): Promise<FakeProviders> {
  const modes = new Map<Route, Mode>();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const values: FakeValues = {
    stripe: {
      available: [
        { amount: 1_234_567, currency: "usd" },
        { amount: 50_000, currency: "eur" },
      ],
      pending: [{ amount: 78_900, currency: "usd" }],
    },
    github: { stars: 4242, forks: 321, openIssues: 17, watchers: 99 },
    plausible: { visitors: 1200, pageviews: 3400 },
    insightText: "Revenue grew 12% this week; open issues are rising.",
  };

  let hugeBytes = 0;
  /** A valid JSON array of HUGE_BODY_BYTES, written only as fast as the client reads it. */
  const streamHugeBody = (response: ServerResponse, declareLength: boolean): void => {
    response.writeHead(200, {
      "Content-Type": "application/json",
      ...(declareLength ? { "Content-Length": String(HUGE_BODY_BYTES) } : {}),
    });
    const chunk = "0,".repeat(32_768);
    let written = 0;
    let closed = false;
    response.on("close", () => (closed = true));
    const pump = (): void => {
      while (!closed) {
        if (written === 0) {
          response.write("[");
          written = 1;
        }
        if (written + chunk.length + 1 >= HUGE_BODY_BYTES) {
          const tail = "0".padStart(HUGE_BODY_BYTES - written - 1, " ") + "]";
          hugeBytes += tail.length;
          response.end(tail);
          return;
        }
        written += chunk.length;
        hugeBytes += chunk.length;
        if (!response.write(chunk)) {
          response.once("drain", pump);
          return;
        }
      }
    };
    pump();
  };

  const handle = (request: IncomingMessage, response: ServerResponse, body: string): void => {
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    const which = route(request.method ?? "GET", path, request.headers);
    requests.push({ route: which, method: request.method ?? "", path, headers: request.headers, body });
    if (!which) return json(response, 404, { error: "no such route in the fake" });

    const mode = modes.get(which) ?? "ok";
    if (mode === "slow") {
      const timer = setTimeout(() => json(response, 200, {}), SLOW_RESPONSE_MS);
      response.on("close", () => clearTimeout(timer));
      return;
    }
    if (mode === "invalid_json") {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end("<html><body>502 Bad Gateway</body></html>");
      return;
    }
    if (mode === "wrong_shape") return json(response, 200, { unexpected: true });
    if (mode === "huge" || mode === "huge_declared") return streamHugeBody(response, mode === "huge_declared");
    if (mode === "redirect") {
      // Elsewhere on this server: a client that followed it would show up in `requests` again.
      response.writeHead(307, { Location: "/redirected-here" });
      response.end();
      return;
    }
    if (typeof mode === "number") {
      if (mode === 401) return unauthorized(response, which, bearer(request.headers) || String(request.headers["x-api-key"]));
      return json(response, mode, { error: { message: `forced ${mode}` } }, mode === 429 ? { "Retry-After": "30" } : {});
    }

    const headers = request.headers;
    switch (which) {
      case "stripe.balance":
        if (bearer(headers) !== secrets.stripeKey) return unauthorized(response, which, bearer(headers));
        return json(response, 200, {
          object: "balance",
          available: values.stripe.available.map((funds) => ({ ...funds, source_types: { card: funds.amount } })),
          connect_reserved: [{ amount: 0, currency: "usd" }],
          livemode: false,
          pending: values.stripe.pending.map((funds) => ({ ...funds, source_types: { card: funds.amount } })),
        });
      case "github.repo": {
        if (!headers["user-agent"]) return json(response, 403, { message: "Request forbidden by administrative rules." });
        if (bearer(headers) !== secrets.githubToken) return unauthorized(response, which, bearer(headers));
        if (headers.accept !== "application/vnd.github+json" || headers["x-github-api-version"] !== "2022-11-28") {
          return json(response, 400, { message: "Bad request" });
        }
        if (path !== `/repos/${secrets.githubRepository}`) {
          return json(response, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest", status: "404" });
        }
        const [owner = "", name = ""] = secrets.githubRepository.split("/");
        return json(response, 200, {
          id: 1296269,
          node_id: "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
          name,
          full_name: secrets.githubRepository,
          owner: { login: owner, id: 1, type: "Organization" },
          private: false,
          html_url: `https://github.com/${secrets.githubRepository}`,
          stargazers_count: values.github.stars,
          watchers_count: values.github.stars,
          forks_count: values.github.forks,
          open_issues_count: values.github.openIssues,
          subscribers_count: values.github.watchers,
          default_branch: "main",
        });
      }
      case "plausible.query": {
        if (bearer(headers) !== secrets.plausibleKey) return unauthorized(response, which, bearer(headers));
        const query = JSON.parse(body) as { site_id?: string; metrics?: string[]; date_range?: unknown };
        if (query.site_id !== secrets.plausibleSiteId) {
          return json(response, 400, { error: `Site does not exist or user does not have access to it.` });
        }
        if (JSON.stringify(query.metrics) !== JSON.stringify(["visitors", "pageviews"]) || !Array.isArray(query.date_range)) {
          return json(response, 400, { error: "Invalid query" });
        }
        return json(response, 200, {
          results: [{ metrics: [values.plausible.visitors, values.plausible.pageviews], dimensions: [] }],
          meta: {},
          query: { ...query, filters: [], dimensions: [], order_by: [["visitors", "desc"]] },
        });
      }
      case "openai.chat": {
        if (bearer(headers) !== secrets.openaiKey) return unauthorized(response, which, bearer(headers));
        const chat = JSON.parse(body) as { model?: string; messages?: unknown[] };
        if (!chat.model || !Array.isArray(chat.messages)) return json(response, 400, { error: { message: "bad request" } });
        return json(response, 200, {
          id: "chatcmpl-fake123",
          object: "chat.completion",
          created: 1_700_000_000,
          model: chat.model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: values.insightText, refusal: null },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 },
        });
      }
      case "anthropic.messages": {
        if (headers["x-api-key"] !== secrets.anthropicKey) {
          return unauthorized(response, which, String(headers["x-api-key"]));
        }
        if (headers["anthropic-version"] !== "2023-06-01") return json(response, 400, { type: "error" });
        const message = JSON.parse(body) as { model?: string; max_tokens?: number; messages?: unknown[] };
        if (!message.model || !message.max_tokens || !Array.isArray(message.messages)) {
          return json(response, 400, { type: "error", error: { type: "invalid_request_error", message: "bad" } });
        }
        return json(response, 200, {
          id: "msg_fake123",
          type: "message",
          role: "assistant",
          model: message.model,
          content: [{ type: "text", text: values.insightText }],
          stop_reason: "end_turn",
          stop_sequence: null,
          usage: { input_tokens: 120, output_tokens: 30 },
        });
      }
      case "openai.models":
        if (bearer(headers) !== secrets.openaiKey) return unauthorized(response, which, bearer(headers));
        return json(response, 200, {
          object: "list",
          data: [{ id: "gpt-4o-mini", object: "model", created: 1_721_172_741, owned_by: "system" }],
        });
      case "anthropic.models":
        if (headers["x-api-key"] !== secrets.anthropicKey) {
          return unauthorized(response, which, String(headers["x-api-key"]));
        }
        return json(response, 200, {
          data: [{ type: "model", id: "claude-haiku-4-5", display_name: "Claude Haiku 4.5", created_at: "2025-10-01T00:00:00Z" }],
          has_more: false,
          first_id: "claude-haiku-4-5",
          last_id: "claude-haiku-4-5",
        });
    }
  };

  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => handle(request, response, body));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    values,
    setMode: (which, mode) => void modes.set(which, mode),
    hugeBytesSent: () => hugeBytes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
