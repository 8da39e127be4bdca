// @vitest-environment node
/**
 * Proves the CI bundle check (src/ci/bundleCheck.mjs) bites: on a copy of
 * this project with a V8-runtime file importing a Node built-in (directly,
 * and through a helper outside the functions directory) it fails and names
 * both importers, while a "use node" file doing the same passes.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
let copy: string;

beforeAll(async () => {
  copy = await mkdtemp(path.join(tmpdir(), "bundle-check-test-"));
  for (const file of ["package.json", "convex.json", "tsconfig.json"]) await cp(path.join(repoRoot, file), path.join(copy, file));
  await cp(path.join(repoRoot, "src/convex"), path.join(copy, "src/convex"), { recursive: true });
  await symlink(path.join(repoRoot, "node_modules"), path.join(copy, "node_modules"), "dir");
  await mkdir(path.join(copy, "src/shared"));
  await writeFile(
    path.join(copy, "src/convex/nodeRuntime.ts"),
    '"use node";\nimport { readFileSync } from "node:fs";\nexport const read = () => readFileSync;\n',
  );
});

afterAll(async () => {
  if (copy) await rm(copy, { recursive: true, force: true });
});

/** Runs the check on the copy: its exit code and error output. */
function runCheck(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, "src/ci/bundleCheck.mjs"), copy], (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('a "use node" file may import Node built-ins; a V8-runtime file that pulls one in fails the check', async () => {
  const withNodeFile = await runCheck();
  expect(withNodeFile.stderr).toBe("");
  expect(withNodeFile).toMatchObject({ code: 0, stdout: expect.stringContaining("no Node built-ins") });

  await writeFile(path.join(copy, "src/convex/directNodeImport.ts"), 'import { readFileSync } from "node:fs";\nexport const read = () => readFileSync;\n');
  await writeFile(path.join(copy, "src/shared/hostInfo.ts"), 'import { hostname } from "os";\nexport const host = () => hostname();\n');
  await writeFile(path.join(copy, "src/convex/indirectNodeImport.ts"), 'import { host } from "../shared/hostInfo";\nexport const where = () => host();\n');
  const result = await runCheck();
  expect(result.code).toBe(1);
  expect(result.stderr).toContain("bundle check FAILED");
  expect(result.stderr).toContain('src/convex/directNodeImport.ts imports "node:fs"');
  expect(result.stderr).toContain('src/shared/hostInfo.ts imports "os"');
  expect(result.stderr).not.toContain("nodeRuntime.ts");
});
