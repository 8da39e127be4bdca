/**
 * The AI providers users bring keys for, by id, and the two calls made with
 * a key: a completion (ai.generateInsight) and a key check (ai.verifyKey).
 * Adding a provider is one file plus one line here (and its id in
 * validators.ts aiProviderValidator). Requests go through the one transport;
 * failures are ProviderErrors whose messages never contain the key or a
 * response body.
 */
import { env } from "../../env";
import type { AiProvider } from "../../validators";
import { ProviderError } from "../errors";
import { baseUrl, expectArray, expectObject, requestJson } from "../transport";
import { anthropic } from "./anthropic";
import { openai } from "./openai";
import type { AiProviderEntry } from "./types";

export { ANTHROPIC_DEFAULT_MODEL } from "./anthropic";
export { OPENAI_DEFAULT_MODEL } from "./openai";

/** Every provider, by id: a Record, so a provider added to the validator must be added here too. */
const AI_PROVIDERS: Record<AiProvider, AiProviderEntry> = { openai, anthropic };

/** Whether `apiKey` has the shape of a key of `provider` ("sk-…", "sk-proj-…"; "sk-ant-…"). */
export function looksLikeAiKey(provider: AiProvider, apiKey: string): boolean {
  return AI_PROVIDERS[provider].keyPattern.test(apiKey);
}

/** Upper bound on the length of a generated insight. */
export const MAX_OUTPUT_TOKENS = 600;

/** The model used for `provider`: its environment variable (OPENAI_MODEL, ANTHROPIC_MODEL) if set, else its default. */
export function aiModel(provider: AiProvider): string {
  const { envName, defaultValue } = AI_PROVIDERS[provider].model;
  return env[envName]?.trim() || defaultValue;
}

function endpoint(entry: AiProviderEntry, path: string): string {
  return `${baseUrl(entry.baseUrl.envName, entry.baseUrl.defaultValue)}${path}`;
}

/** Text the provider generates for a system instruction and a user prompt. */
export async function completeText(
  provider: AiProvider,
  apiKey: string,
  system: string,
  prompt: string,
): Promise<{ model: string; text: string }> {
  const entry = AI_PROVIDERS[provider];
  const model = aiModel(provider);
  const answer = await requestJson(entry.name, endpoint(entry, entry.completionPath), {
    method: "POST",
    headers: { ...entry.authHeaders(apiKey), "Content-Type": "application/json" },
    body: JSON.stringify(entry.completionBody({ model, system, prompt, maxOutputTokens: MAX_OUTPUT_TOKENS })),
  });
  const text = entry.completionText(expectObject(entry.name, answer)).trim();
  if (!text) throw new ProviderError(entry.name, "bad_response");
  return { model, text };
}

/**
 * Whether the provider accepts `apiKey`, with a cheap call (GET of its
 * keyCheckPath). Resolves for a working key; throws a ProviderError otherwise.
 */
export async function checkApiKey(provider: AiProvider, apiKey: string): Promise<void> {
  const entry = AI_PROVIDERS[provider];
  const answer = await requestJson(entry.name, endpoint(entry, entry.keyCheckPath), { headers: entry.authHeaders(apiKey) });
  expectArray(entry.name, expectObject(entry.name, answer).data);
}
