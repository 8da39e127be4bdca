import { describe, expect, test } from "vitest";
import { maskSecret } from "../../convex/lib/mask";

/** Checks the hint shows at most a prefix of <= 8 characters and the last 4, and at most half of the secret. */
function expectSafeHint(secret: string, hint: string): void {
  const [shownPrefix = "", shownSuffix = "", ...rest] = hint.split("…");
  expect(rest).toEqual([]);
  expect(secret.startsWith(shownPrefix)).toBe(true);
  expect(secret.endsWith(shownSuffix)).toBe(true);
  expect(shownPrefix.length).toBeLessThanOrEqual(8);
  expect(shownSuffix.length).toBeLessThanOrEqual(4);
  expect(shownPrefix.length + shownSuffix.length).toBeLessThanOrEqual(secret.length / 2);
}

describe("maskSecret", () => {
  test.each([
    ["sk_live_51HxAbCdEfGhIjKlMnOp4242", "sk_live_…4242"],
    ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_…8B4a"],
    ["sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "sk-ant-…0123"],
    ["r6bsJb0kn5UDe8D9aZtHqsAy9fkkq8ZK", "…q8ZK"],
  ])("%s -> %s", (secret, hint) => {
    expect(maskSecret(secret)).toBe(hint);
  });

  test("secrets shorter than 12 characters are fully masked", () => {
    for (let length = 0; length < 12; length++) expect(maskSecret("k".repeat(length))).toBe("…");
    expect(maskSecret("sk_live_abc")).toBe("…");
  });

  test("a prefix is dropped when prefix and suffix would show more than half", () => {
    expect(maskSecret("sk_live_12345")).toBe("…2345");
    expect(maskSecret("sk_live_123456789012345")).toBe("…2345");
    expect(maskSecret("sk_live_1234567890123456")).toBe("sk_live_…3456");
  });

  test("never reveals more than prefix + last 4 (generated secrets)", () => {
    const alphabet = "abcXYZ019_-";
    for (let length = 0; length <= 64; length++) {
      for (let sample = 0; sample < 20; sample++) {
        const bytes = crypto.getRandomValues(new Uint8Array(length));
        const secret = Array.from(bytes, (byte) => alphabet[byte % alphabet.length]).join("");
        const hint = maskSecret(secret);
        expectSafeHint(secret, hint);
        if (length < 12) expect(hint).toBe("…");
      }
    }
  });
});
