import { expect, test } from "vitest";
import { api } from "../convex/_generated/api";
import { identity, newBackend } from "./helpers/convex";

test("backend loads", async () => {
  const t = newBackend();
  expect(await t.run(async (ctx) => ctx.db.query("users").collect())).toEqual([]);
  expect(api).toBeDefined();
  expect(identity("a").subject).toBe("user|a");
});
