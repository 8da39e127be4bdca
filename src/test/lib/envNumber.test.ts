import { expect, test } from "vitest";
import { envNumber } from "../../convex/lib/envNumber";

test.each([
  [undefined, 7],
  ["", 7],
  ["   ", 7],
  ["abc", 7],
  ["Infinity", 7],
  ["12", 12],
  [" 2.5 ", 2.5],
  ["0", 7],
  ["-3", 7],
])("above 0: %j gives %d", (value, expected) => {
  expect(envNumber(value, 7, { above: 0 })).toBe(expected);
});

test.each([
  [undefined, 15],
  ["", 15],
  ["x", 15],
  ["60", 60],
  ["0.5", 1],
  ["0", 1],
  ["-10", 1],
])("at least 1: %j gives %d", (value, expected) => {
  expect(envNumber(value, 15, { atLeast: 1 })).toBe(expected);
});
