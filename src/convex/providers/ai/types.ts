/** What an AI provider declares; the registry (registry.ts) sends its requests through the transport. */
import type { AiProvider } from "../../validators";

/** Where a setting comes from: an environment variable, else a default. */
export interface Setting {
  envName: string;
  defaultValue: string;
}

/** What one completion asks for. */
export interface CompletionRequest {
  model: string;
  system: string;
  prompt: string;
  /** Upper bound on the length of the answer, in tokens. */
  maxOutputTokens: number;
}

/** An AI provider users bring their own key for. */
export interface AiProviderEntry {
  /** Stable id, stored with the key (validators.ts aiProviderValidator). */
  id: AiProvider;
  /** Display name, e.g. "OpenAI". */
  name: string;
  /** What its keys look like (checked before a key is stored or tried; the length bounds are aiKeys.ts's). */
  keyPattern: RegExp;
  /** The API's base URL (tests point it at a local server). */
  baseUrl: Setting;
  /** The model used for insights. */
  model: Setting;
  /** The headers that carry the key (and any version header the API requires). */
  authHeaders(apiKey: string): Record<string, string>;
  /** Path of the text-generation endpoint, e.g. "/v1/chat/completions". */
  completionPath: string;
  /** The JSON body of a completion request. */
  completionBody(request: CompletionRequest): Record<string, unknown>;
  /** The generated text of a completion answer (a JSON object); a bad_response ProviderError when it has none. */
  completionText(answer: Record<string, unknown>): string;
  /** Path of a cheap authenticated GET whose answer holds a `data` array, used to check a key (e.g. "/v1/models"). */
  keyCheckPath: string;
}
