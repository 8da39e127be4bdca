#!/usr/bin/env node
// Bundles the Convex functions with the real Convex CLI, offline, and fails
// when a file that runs in Convex's V8 runtime (no "use node" directive)
// pulls in a Node.js built-in, directly or through a package.
//
// `convex deploy --debug-bundle-path <dir>` runs the same esbuild bundling a
// real push does (platform "browser" for the V8 runtime, where a Node
// built-in cannot be resolved and fails the build), writes the bundles to
// <dir> and stops before talking to the deployment. The deployment it is
// given is a stub on 127.0.0.1 that answers every request with 503, so
// nothing leaves the machine; a request to it fails the check (a newer CLI
// that needs the server here must be looked at, not silently trusted).
// The written bundles are then scanned for any import of a Node built-in
// left in a V8-runtime module, and each module is evaluated in a context
// with only the globals Convex's runtime has (evaluateModules.mjs), so
// module-scope errors and Node-only globals (Buffer, require, ...) fail too.
//
// Usage: node src/ci/bundleCheck.mjs [projectRoot]   (default: this repository)
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runConvexCli, runNode, startStubDeployment } from "./cliStub.mjs";

const projectRoot = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "../.."));

const EVALUATE_MODULES = path.join(path.dirname(fileURLToPath(import.meta.url)), "evaluateModules.mjs");

/** Every .js file under `dir`. */
async function jsFilesUnder(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith(".js")).map((entry) => path.join(entry.parentPath, entry.name));
}

const NODE_BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith("_")));
const IMPORT_SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)["']([^"']+)["']/g;

/** Node built-ins `source` still imports (a bundle normally has none: esbuild fails first). */
function nodeBuiltinImports(source) {
  const found = new Set();
  for (const [, specifier] of source.matchAll(IMPORT_SPECIFIER)) {
    if (specifier.startsWith("node:") || NODE_BUILTINS.has(specifier.split("/")[0])) found.add(specifier);
  }
  return [...found];
}

async function main() {
  const stub = await startStubDeployment();
  const work = await mkdtemp(path.join(tmpdir(), "bundle-check-"));
  const bundleDir = path.join(work, "bundle");
  try {
    // CONVEX_PROVISION_HOST: nothing the CLI might provision can leave the machine either.
    process.env.CONVEX_PROVISION_HOST = stub.url;
    const { code, output } = await runConvexCli(projectRoot, [
      "deploy",
      "--url",
      stub.url,
      "--admin-key",
      "bundle-check",
      "--debug-bundle-path",
      bundleDir,
      "--codegen",
      "disable",
      "--typecheck",
      "disable",
      "--yes",
    ]);
    const failures = [];
    if (code !== 0) {
      const unresolved = [...output.matchAll(/Could not resolve "([^"]+)"\s*\n\s*\n\s*(\S+?):\d+:\d+/g)].map(([, what, file]) => `${file} imports "${what}"`);
      failures.push(
        `the Convex CLI could not bundle the functions (exit ${code})` + (unresolved.length ? `:\n  ${unresolved.join("\n  ")}` : ""),
      );
    }
    if (/esbuild warning/i.test(output)) failures.push("the bundler warned (see its output above)");
    if (stub.requests.length > 0) failures.push(`the CLI tried to reach the deployment: ${stub.requests.join(", ")}`);
    if (code === 0) {
      const isolateFiles = await jsFilesUnder(path.join(bundleDir, "isolate")).catch(() => []);
      if (isolateFiles.length === 0) failures.push("no V8-runtime bundle was written");
      for (const file of isolateFiles) {
        const imports = nodeBuiltinImports(await readFile(file, "utf8"));
        if (imports.length) failures.push(`${path.relative(bundleDir, file)} imports Node built-ins: ${imports.join(", ")}`);
      }
      if (failures.length === 0) {
        process.stdout.write(`bundle check: ${isolateFiles.length} V8-runtime modules bundled, no Node built-ins\n`);
        // Then evaluate each as a deployment loads it, with only Convex's globals (evaluateModules.mjs).
        const evaluation = await runNode(["--experimental-vm-modules", "--no-warnings", EVALUATE_MODULES, path.join(bundleDir, "isolate")], {
          cwd: projectRoot,
        });
        if (evaluation.code === 0) process.stdout.write(`bundle check: ${evaluation.output.trim()}\n`);
        else failures.push(evaluation.output.trim());
      }
    }
    if (failures.length > 0) {
      process.stderr.write(`${output}\n`);
      process.stderr.write(`bundle check FAILED:\n- ${failures.join("\n- ")}\n`);
      process.stderr.write('Files that need Node.js APIs must start with "use node" (and then hold only actions).\n');
      process.exitCode = 1;
    }
  } finally {
    await stub.close();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
