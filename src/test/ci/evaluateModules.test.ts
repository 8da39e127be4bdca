// @vitest-environment node
/**
 * Proves the module evaluation of the CI bundle check (src/ci/evaluateModules.mjs)
 * bites: on a bundle directory laid out as `convex deploy --debug-bundle-path`
 * writes it, modules that use Node-only globals at module scope, import a
 * Node built-in or throw while evaluated fail and are named; modules that use
 * only what Convex's runtime has (crypto, TextEncoder, URL, process.env, a
 * shared chunk under _deps) pass.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, test } from "vitest";

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../ci/evaluateModules.mjs");
let dir: string | undefined;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function bundle(files: Record<string, string>): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), "evaluate-modules-test-"));
  const isolate = path.join(dir, "isolate");
  for (const [name, source] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(isolate, name)), { recursive: true });
    await writeFile(path.join(isolate, name), source);
  }
  return isolate;
}

function evaluate(isolate: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--experimental-vm-modules", "--no-warnings", script, isolate], (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const GOOD = {
  "_deps/SHARED.js": "export const encoder = new TextEncoder();\n",
  "good.js": [
    'import { encoder } from "./_deps/SHARED.js";',
    "export const bytes = encoder.encode(new URL('https://example.test/a').pathname);",
    "export const random = crypto.getRandomValues(new Uint8Array(4));",
    "export const configured = process.env.MASTER_ENCRYPTION_KEY ?? null;",
    "export const later = () => Buffer.from('only when called');",
  ].join("\n"),
  "nested/module.js": "export default btoa('x');\n",
};

test("modules using only Convex's globals pass, nested and with shared chunks", async () => {
  const result = await evaluate(await bundle(GOOD));
  expect(result).toMatchObject({ code: 0, stdout: "evaluated 2 modules in a context with only Convex's globals\n", stderr: "" });
});

test("Node-only globals at module scope, Node imports and module-scope errors fail, each named", async () => {
  const result = await evaluate(
    await bundle({
      ...GOOD,
      "buffer.js": "export const x = Buffer.from('a');\n",
      "require.js": "export const fs = globalThis.require('fs');\n",
      "nodeVersion.js": "export const v = process.version.length;\n",
      "nodeImport.js": "import fs from 'node:fs';\nexport default fs;\n",
      "throws.js": "throw new Error('refused at module scope');\n",
      "syscall.js": "Convex.syscall('1.0/get', '{}');\n",
    }),
  );
  expect(result.code).toBe(1);
  expect(result.stderr).toContain("module evaluation FAILED");
  expect(result.stderr).toContain("buffer.js: ReferenceError: Buffer is not defined");
  expect(result.stderr).toContain("require.js: TypeError");
  expect(result.stderr).toContain("nodeVersion.js: TypeError");
  expect(result.stderr).toContain('nodeImport.js: Error: imports "node:fs"');
  expect(result.stderr).toContain("throws.js: Error: refused at module scope");
  expect(result.stderr).toContain("syscall.js: Error: module scope called the Convex syscall 1.0/get");
  expect(result.stderr).not.toContain("good.js");
});
