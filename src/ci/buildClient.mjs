#!/usr/bin/env node
// `npm run build:types`: the typed client the dashboard's repository installs,
// written to dist/client (git-ignored) as a small package,
// "@dashtray/backend-client", whose only dependencies are peers:
//
// - declaration files (.d.ts) of every module in src/convex (tsc with
//   src/convex/tsconfig.client.json) and the generated api.d.ts,
//   dataModel.d.ts and server.d.ts next to them: `api`'s types are
//   declarations, so the dashboard's `skipLibCheck` applies to them and its
//   own compiler options (erasableSyntaxOnly, exactOptionalPropertyTypes,
//   ...) never judge the backend's sources;
// - the only runtime code a client needs: _generated/api.js (the `api`
//   object) and errors.js with lib/errors.js (appErrorData, isAppErrorData,
//   errorCodes), transpiled as they are;
// - package.json with an `exports` map: "./api", "./dataModel", "./errors".
//
// CI then compiles src/test/dashboardFixture against it with create-vite's
// react-ts compiler options (.ci/run).
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const source = path.join(root, "src/convex");
const out = path.join(root, "dist/client");

await rm(out, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(source, "tsconfig.client.json")], {
  stdio: "inherit",
});

await mkdir(path.join(out, "_generated"), { recursive: true });
for (const file of ["api.d.ts", "api.js", "dataModel.d.ts", "server.d.ts", "server.js"]) {
  await copyFile(path.join(source, "_generated", file), path.join(out, "_generated", file));
}

for (const file of ["errors.ts", "lib/errors.ts"]) {
  const { outputText } = ts.transpileModule(await readFile(path.join(source, file), "utf8"), {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: false },
    fileName: file,
  });
  // Relative imports get their ".js", so the files load in Node.js and browsers as well as in bundlers.
  const withExtensions = outputText.replace(/(from\s+["'])(\.\.?\/[^"']+?)(["'])/g, (_, start, specifier, end) =>
    `${start}${specifier.endsWith(".js") ? specifier : `${specifier}.js`}${end}`,
  );
  await writeFile(path.join(out, file.replace(/\.ts$/, ".js")), withExtensions);
}

const { version, dependencies } = JSON.parse(await readFile(path.join(root, "package.json"), "utf8"));
const manifest = {
  name: "@dashtray/backend-client",
  version,
  description: "Types of the Dashtray backend's Convex API, its data model and its error contract, for the dashboard.",
  private: true,
  type: "module",
  sideEffects: false,
  exports: {
    "./api": { types: "./_generated/api.d.ts", default: "./_generated/api.js" },
    "./dataModel": { types: "./_generated/dataModel.d.ts" },
    "./errors": { types: "./errors.d.ts", default: "./errors.js" },
  },
  // convex-helpers: types only (the declarations of the function builders name it).
  peerDependencies: { convex: dependencies.convex, "convex-helpers": dependencies["convex-helpers"] },
};
await writeFile(path.join(out, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
process.stdout.write(`typed client written to ${path.relative(root, out)}/\n`);
