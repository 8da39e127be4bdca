/** Anthropic, through its Messages API. */
import { expectArray, expectObject, expectString } from "../transport";
import type { AiProviderEntry } from "./types";

export const ANTHROPIC_DEFAULT_MODEL = "claude-haiku-4-5";
export const ANTHROPIC_VERSION = "2023-06-01";
const NAME = "Anthropic";

export const anthropic: AiProviderEntry = {
  id: "anthropic",
  name: NAME,
  keyPattern: /^sk-ant-[A-Za-z0-9_-]+$/,
  baseUrl: { envName: "ANTHROPIC_API_BASE_URL", defaultValue: "https://api.anthropic.com" },
  model: { envName: "ANTHROPIC_MODEL", defaultValue: ANTHROPIC_DEFAULT_MODEL },
  authHeaders: (apiKey) => ({ "x-api-key": apiKey, "anthropic-version": ANTHROPIC_VERSION }),
  completionPath: "/v1/messages",
  completionBody: ({ model, system, prompt, maxOutputTokens }) => ({
    model,
    max_tokens: maxOutputTokens,
    system,
    messages: [{ role: "user", content: prompt }],
  }),
  completionText: (answer) =>
    expectArray(NAME, answer.content)
      .map((block) => expectObject(NAME, block))
      .filter((block) => block.type === "text")
      .map((block) => expectString(NAME, block.text))
      .join(""),
  keyCheckPath: "/v1/models",
};
