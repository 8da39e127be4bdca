/** OpenAI, through its Chat Completions API. */
import { expectArray, expectObject, expectString } from "../transport";
import type { AiProviderEntry } from "./types";

export const OPENAI_DEFAULT_MODEL = "gpt-4o-mini";
const NAME = "OpenAI";

export const openai: AiProviderEntry = {
  id: "openai",
  name: NAME,
  keyPattern: /^sk-[A-Za-z0-9_-]+$/,
  baseUrl: { envName: "OPENAI_API_BASE_URL", defaultValue: "https://api.openai.com" },
  model: { envName: "OPENAI_MODEL", defaultValue: OPENAI_DEFAULT_MODEL },
  authHeaders: (apiKey) => ({ Authorization: `Bearer ${apiKey}` }),
  completionPath: "/v1/chat/completions",
  completionBody: ({ model, system, prompt, maxOutputTokens }) => ({
    model,
    max_completion_tokens: maxOutputTokens,
    messages: [
      { role: "system", content: system },
      { role: "user", content: prompt },
    ],
  }),
  completionText: (answer) => {
    const choice = expectObject(NAME, expectArray(NAME, answer.choices)[0]);
    return expectString(NAME, expectObject(NAME, choice.message).content);
  },
  keyCheckPath: "/v1/models",
};
