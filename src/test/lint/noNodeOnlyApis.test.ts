// @vitest-environment node
/**
 * Guards the lint rule that keeps Node-only APIs out of files that run in the
 * Convex runtime (tests there would not notice: the test environment has Buffer).
 */
import { Linter } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, test } from "vitest";
import { noNodeOnlyApis } from "../../lint/noNodeOnlyApis.js";

const linter = new Linter({ configType: "flat" });
const config = [
  {
    files: ["**/*.ts"],
    languageOptions: { parser: tseslint.parser },
    plugins: { dashtray: { rules: { "no-node-only-apis": noNodeOnlyApis } } },
    rules: { "dashtray/no-node-only-apis": "error" as const },
  },
];

/** The rule's messages for `code` linted as a TypeScript file (fails on a parse error). */
function lint(code: string): string[] {
  const messages = linter.verify(code, config, "src/convex/example.ts");
  for (const message of messages) expect(message.fatal, message.message).toBeFalsy();
  return messages.map((message) => message.message);
}

describe("dashtray/no-node-only-apis", () => {
  test.each([
    ["Buffer", 'export const bytes = Buffer.from("x");', '"Buffer"'],
    ["globalThis.Buffer", 'export const bytes = globalThis.Buffer.from("x");', '"Buffer"'],
    ["Buffer as a type", "export let bytes: Buffer | undefined;", '"Buffer"'],
    ["require", 'export const fs = require("fs");', '"require"'],
    ["__dirname", "export const here = __dirname;", '"__dirname"'],
    ["node:fs import", 'import { readFileSync } from "node:fs";\nexport { readFileSync };', 'Module "node:fs"'],
    ["bare fs import", 'import fs from "fs";\nexport { fs };', 'Module "fs"'],
    ["fs/promises import", 'import { readFile } from "fs/promises";\nexport { readFile };', 'Module "fs/promises"'],
    ["re-export", 'export { join } from "path";', 'Module "path"'],
    ["dynamic import", 'export const crypto = await import("node:crypto");', 'Module "node:crypto"'],
  ])("flags %s in a Convex runtime file", (_name, code, expected) => {
    const messages = lint(code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(expected);
  });

  test('allows all of it in a "use node" file', () => {
    const code = [
      '"use node";',
      'import { readFileSync } from "node:fs";',
      'import path from "path";',
      'export const bytes = Buffer.from(readFileSync(path.join(__dirname, "x")));',
      'export const fs = require("fs");',
    ].join("\n");
    expect(lint(code)).toEqual([]);
  });

  test.each([
    ["a local variable named Buffer", 'const Buffer = { from: (s: string) => s };\nexport const x = Buffer.from("x");'],
    ["a parameter named Buffer", "export function f(Buffer: number) {\n  return Buffer + 1;\n}"],
    ["a property .Buffer", "export const f = (o: { Buffer: number }) => o.Buffer;"],
    ["an optional property ?.Buffer", "export const f = (o?: { Buffer: number }) => o?.Buffer;"],
    ["an object key Buffer", "export const o = { Buffer: 1, require: 2 };"],
    ["class members named Buffer", "export class A {\n  Buffer = 1;\n  require() {}\n}"],
    ["an interface property", "export interface X {\n  Buffer: Uint8Array;\n}"],
    ["an import alias", 'import { Buffer as Bytes } from "./bytes";\nexport { Bytes };'],
    ["a relative or package import", 'import { v } from "convex/values";\nimport { x } from "./fs";\nexport { v, x };'],
    ["Web APIs", 'export const bytes = new TextEncoder().encode(btoa("x"));'],
  ])("does not flag %s", (_name, code) => {
    expect(lint(code)).toEqual([]);
  });

  test('a "use node" string that is not the leading directive does not exempt the file', () => {
    expect(lint('export const x = 1;\n"use node";\nexport const y = Buffer.alloc(1);')).toHaveLength(1);
  });
});
