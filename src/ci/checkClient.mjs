#!/usr/bin/env node
// `npm run check:client`: compiles the dashboard fixture (src/test/dashboardFixture) against the typed
// client in dist/client (npm run build:types) the way the dashboard's repository would resolve it: as the
// package "@dashtray/backend-client" in node_modules, through its package.json's `exports` map (a symlink,
// node_modules is git-ignored), once with create-vite's react-ts options and once with stricter ones.
//
// Those options include skipLibCheck, so an import inside the package's declarations that does not resolve
// (a module moved without its declaration, a path the build no longer writes) is not reported: every function
// behind it silently becomes `any` and the fixture still compiles. So first, every import of every .d.ts in
// the package is resolved with the fixture's own options, and any that does not resolve fails the check.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, symlink } from "node:fs/promises";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixture = path.join(root, "src/test/dashboardFixture");
const client = path.join(root, "dist/client");
if (!existsSync(path.join(client, "package.json"))) {
  process.stderr.write("dist/client is missing: run `npm run build:types` first\n");
  process.exit(1);
}

const scope = path.join(fixture, "node_modules/@dashtray");
await rm(path.join(fixture, "node_modules"), { recursive: true, force: true });
await mkdir(scope, { recursive: true });
await symlink(path.relative(scope, client), path.join(scope, "backend-client"), "dir");

const { config } = ts.readConfigFile(path.join(fixture, "tsconfig.app.json"), ts.sys.readFile);
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, fixture);
const unresolved = [];
let imports = 0;
for (const entry of await readdir(client, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith(".d.ts")) continue;
  const file = path.join(entry.parentPath, entry.name);
  for (const { fileName: specifier } of ts.preProcessFile(await readFile(file, "utf8"), true, true).importedFiles) {
    imports += 1;
    if (ts.resolveModuleName(specifier, file, options, ts.sys).resolvedModule === undefined) {
      unresolved.push(`${path.relative(root, file)}: "${specifier}"`);
    }
  }
}
if (unresolved.length > 0) {
  process.stderr.write(`imports in the typed client's declarations that do not resolve (their types would be \`any\`):\n  ${unresolved.join("\n  ")}\n`);
  process.exit(1);
}
process.stdout.write(`typed client: ${imports} imports in its declarations, all resolved\n`);

const tsc = path.join(root, "node_modules/typescript/bin/tsc");
for (const config of ["tsconfig.app.json", "tsconfig.strict.json"]) {
  execFileSync(process.execPath, [tsc, "-p", path.join(fixture, config)], { stdio: "inherit" });
}
