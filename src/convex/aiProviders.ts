/**
 * HTTP clients for the AI providers users bring keys for: OpenAI (Chat
 * Completions) and Anthropic (Messages). Base URLs and models are
 * overridable by environment variables; failures are ProviderErrors whose
 * messages never contain the key or a response body.
 */
import { env } from "./_generated/server";
import { baseUrl, expectArray, expectObject, expectString, requestJson } from "./integrations/http";
import { ProviderError } from "./integrations/providerError";
import type { AiProvider } from "./validators";

export const OPENAI_DEFAULT_MODEL = "gpt-4o-mini";
export const ANTHROPIC_DEFAULT_MODEL = "claude-haiku-4-5";
export const ANTHROPIC_VERSION = "2023-06-01";
/** Upper bound on the length of a generated insight. */
export const MAX_OUTPUT_TOKENS = 600;

const PROVIDERS = {
  openai: { name: "OpenAI", baseUrlEnv: "OPENAI_API_BASE_URL", defaultBaseUrl: "https://api.openai.com" },
  anthropic: { name: "Anthropic", baseUrlEnv: "ANTHROPIC_API_BASE_URL", defaultBaseUrl: "https://api.anthropic.com" },
} as const;

/** Display name of a provider, e.g. "OpenAI". */
export function aiProviderName(provider: AiProvider): string {
  return PROVIDERS[provider].name;
}

/** The model used for `provider`: OPENAI_MODEL / ANTHROPIC_MODEL if set, else the default. */
export function aiModel(provider: AiProvider): string {
  const configured = (provider === "openai" ? env.OPENAI_MODEL : env.ANTHROPIC_MODEL)?.trim();
  return configured || (provider === "openai" ? OPENAI_DEFAULT_MODEL : ANTHROPIC_DEFAULT_MODEL);
}

function endpoint(provider: AiProvider, path: string): string {
  const { baseUrlEnv, defaultBaseUrl } = PROVIDERS[provider];
  return `${baseUrl(baseUrlEnv, defaultBaseUrl)}${path}`;
}

function authHeaders(provider: AiProvider, apiKey: string): Record<string, string> {
  return provider === "openai"
    ? { Authorization: `Bearer ${apiKey}` }
    : { "x-api-key": apiKey, "anthropic-version": ANTHROPIC_VERSION };
}

/** Text the provider generates for a system instruction and a user prompt. */
export async function completeText(
  provider: AiProvider,
  apiKey: string,
  system: string,
  prompt: string,
): Promise<{ model: string; text: string }> {
  const name = aiProviderName(provider);
  const model = aiModel(provider);
  const headers = { ...authHeaders(provider, apiKey), "Content-Type": "application/json" };

  if (provider === "openai") {
    const answer = expectObject(
      name,
      await requestJson(name, endpoint(provider, "/v1/chat/completions"), {
        method: "POST",
        headers,
        body: JSON.stringify({
          model,
          max_completion_tokens: MAX_OUTPUT_TOKENS,
          messages: [
            { role: "system", content: system },
            { role: "user", content: prompt },
          ],
        }),
      }),
    );
    const choice = expectObject(name, expectArray(name, answer.choices)[0]);
    return { model, text: nonEmpty(name, expectString(name, expectObject(name, choice.message).content)) };
  }

  const answer = expectObject(
    name,
    await requestJson(name, endpoint(provider, "/v1/messages"), {
      method: "POST",
      headers,
      body: JSON.stringify({
        model,
        max_tokens: MAX_OUTPUT_TOKENS,
        system,
        messages: [{ role: "user", content: prompt }],
      }),
    }),
  );
  const text = expectArray(name, answer.content)
    .map((block) => expectObject(name, block))
    .filter((block) => block.type === "text")
    .map((block) => expectString(name, block.text))
    .join("");
  return { model, text: nonEmpty(name, text) };
}

function nonEmpty(service: string, text: string): string {
  const trimmed = text.trim();
  if (!trimmed) throw new ProviderError(service, "bad_response");
  return trimmed;
}

/**
 * Whether the provider accepts `apiKey`, with a cheap call (GET /v1/models).
 * Resolves for a working key; throws a ProviderError otherwise.
 */
export async function checkApiKey(provider: AiProvider, apiKey: string): Promise<void> {
  const name = aiProviderName(provider);
  const answer = expectObject(
    name,
    await requestJson(name, endpoint(provider, "/v1/models"), { headers: authHeaders(provider, apiKey) }),
  );
  expectArray(name, answer.data);
}
