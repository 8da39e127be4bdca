import { describe, expect, test } from "vitest";
import { HINT_SUFFIX_LENGTH, maskSecret } from "../../convex/lib/mask";

/**
 * Checks a hint: a known type marker the secret starts with, an ellipsis, and
 * at most the last 4 characters of the rest, never more than a quarter of it.
 */
function expectSafeHint(secret: string, hint: string): void {
  const [shownPrefix = "", shownSuffix = "", ...rest] = hint.split("…");
  expect(rest).toEqual([]);
  expect(secret.startsWith(shownPrefix)).toBe(true);
  expect(shownPrefix).toMatch(/^(|github_pat_|sk-proj-|[sr]k_(live|test)_|dt_live_|sk-ant-|gh[pousr]_|sk-)$/);
  const secretPart = secret.slice(shownPrefix.length);
  expect(secretPart.endsWith(shownSuffix)).toBe(true);
  expect(shownSuffix.length).toBeLessThanOrEqual(HINT_SUFFIX_LENGTH);
  expect(shownSuffix.length).toBeLessThanOrEqual(secretPart.length / 4);
}

describe("maskSecret", () => {
  test.each([
    ["sk_live_51HxAbCdEfGhIjKlMnOp4242", "sk_live_…4242"],
    ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_…8B4a"],
    ["sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "sk-ant-…0123"],
    ["github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_…wxyz"],
    ["r6bsJb0kn5UDe8D9aZtHqsAy9fkkq8ZK", "…q8ZK"],
  ])("%s -> %s", (secret, hint) => {
    expect(maskSecret(secret)).toBe(hint);
  });

  test("the shortest Stripe keys show their type only: the suffix never is the whole, or most, of the random part", () => {
    expect(maskSecret("sk_live_1234")).toBe("sk_live_…");
    expect(maskSecret("sk_live_123456789012345")).toBe("sk_live_…");
    expect(maskSecret("sk_live_1234567890123456")).toBe("sk_live_…3456");
  });

  test("random characters that look like a marker are not shown", () => {
    expect(maskSecret("abcdefg_hijklmnopqrstuvwxyz0123")).toBe("…0123");
    expect(maskSecret("ab-cd-efghijklmnopqrstuvwxyz")).toBe("…wxyz");
  });

  test("secrets shorter than 16 characters (after a known marker) show no characters", () => {
    for (let length = 0; length < 16; length++) expect(maskSecret("k".repeat(length))).toBe("…");
  });

  test("never reveals more than a known marker and a quarter (at most 4) of the rest (generated secrets)", () => {
    const alphabet = "abcXYZ019_-";
    for (let length = 0; length <= 64; length++) {
      for (let sample = 0; sample < 20; sample++) {
        const bytes = crypto.getRandomValues(new Uint8Array(length));
        const random = Array.from(bytes, (byte) => alphabet[byte % alphabet.length]).join("");
        for (const secret of [random, `sk_live_${random}`, `ghp_${random}`]) expectSafeHint(secret, maskSecret(secret));
      }
    }
  });
});
