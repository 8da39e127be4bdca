#!/usr/bin/env node
// Evaluates every V8-runtime module the Convex CLI bundled (the `isolate`
// directory of `convex deploy --debug-bundle-path`) the way a deployment
// loads it: as an ES module in a context holding only the globals Convex's
// runtime defines (get-convex/convex-backend, npm-packages/udf-runtime/src/
// setup.ts and the files it calls), one fresh context per module. So a
// module that touches a Node-only global at module scope (Buffer,
// require, process.version, global, __dirname, setImmediate, ...) or throws
// while it is evaluated fails here, as its push would.
//
// Needs `node --experimental-vm-modules` (vm.SourceTextModule); bundleCheck.mjs runs it so.
// Usage: node --experimental-vm-modules src/ci/evaluateModules.mjs <bundleDir>/isolate
// Prints "evaluated N modules" or the failures, one per line, and exits 1 on any.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import process from "node:process";
import vm from "node:vm";

/** Web APIs the Convex runtime puts on its global object (the same standard classes, taken from Node). */
const WEB_GLOBALS = [
  "URL",
  "URLSearchParams",
  "crypto",
  "Crypto",
  "CryptoKey",
  "SubtleCrypto",
  "DOMException",
  "console",
  "Event",
  "EventTarget",
  "structuredClone",
  "setTimeout",
  "clearTimeout",
  "setInterval",
  "clearInterval",
  "AbortController",
  "AbortSignal",
  "ReadableStream",
  "ReadableStreamDefaultReader",
  "WritableStream",
  "TransformStream",
  "ByteLengthQueuingStrategy",
  "CountQueuingStrategy",
  "TextEncoder",
  "TextDecoder",
  "TextEncoderStream",
  "TextDecoderStream",
  "Blob",
  "File",
  "Headers",
  "FormData",
  "Request",
  "Response",
  "fetch",
  "performance",
  "atob",
  "btoa",
  "queueMicrotask",
];

/** Globals Node has and Convex's runtime does not: a module reading one at module scope fails. */
const NODE_ONLY = ["Buffer", "require", "module", "exports", "global", "__dirname", "__filename", "setImmediate", "clearImmediate"];

function convexGlobals() {
  const globals = {};
  for (const name of WEB_GLOBALS) if (name in globalThis) globals[name] = globalThis[name];
  // Convex's `process` holds only `env` (udf-runtime setup.ts, setupMisc).
  globals.process = { env: {} };
  // Syscalls are for function executions, never for module evaluation.
  const noSyscall = (op) => {
    throw new Error(`module scope called the Convex syscall ${op}: only function executions may`);
  };
  globals.Convex = { syscall: noSyscall, asyncSyscall: async (op) => noSyscall(op), jsSyscall: noSyscall };
  const context = vm.createContext(globals, { name: "convex-v8-runtime" });
  vm.runInContext("globalThis.self = globalThis;", context);
  for (const name of NODE_ONLY) {
    if (vm.runInContext(`typeof globalThis[${JSON.stringify(name)}] !== "undefined"`, context)) {
      throw new Error(`the evaluation context unexpectedly has the Node global ${name}`);
    }
  }
  return context;
}

/** Every module a deployment would load: the bundle's .js files outside _deps (those are chunks they import). */
async function entryModules(isolateDir) {
  const entries = await readdir(isolateDir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".js"))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => !path.relative(isolateDir, file).split(path.sep).includes("_deps"))
    .sort();
}

/** Loads, links and evaluates `file` in a fresh Convex-like context; returns null or why it failed. */
async function evaluate(isolateDir, file) {
  const context = convexGlobals();
  const loaded = new Map();
  const load = async (modulePath) => {
    let module = loaded.get(modulePath);
    if (!module) {
      module = new vm.SourceTextModule(await readFile(modulePath, "utf8"), { identifier: modulePath, context });
      loaded.set(modulePath, module);
    }
    return module;
  };
  const link = async (specifier, referencing) => {
    if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
      throw new Error(`imports "${specifier}", which a Convex deployment cannot resolve (the bundle must be self-contained)`);
    }
    return load(path.resolve(path.dirname(referencing.identifier), specifier));
  };
  try {
    const module = await load(file);
    await module.link(link);
    await module.evaluate();
    return null;
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return `${path.relative(isolateDir, file)}: ${message}`;
  }
}

const isolateDir = path.resolve(process.argv[2] ?? "");
const files = await entryModules(isolateDir);
const failures = [];
for (const file of files) {
  const failure = await evaluate(isolateDir, file);
  if (failure) failures.push(failure);
}
if (files.length === 0) failures.push(`no modules found under ${isolateDir}`);
if (failures.length > 0) {
  process.stderr.write(`module evaluation FAILED in a context with only Convex's globals:\n- ${failures.join("\n- ")}\n`);
  process.exitCode = 1;
} else {
  process.stdout.write(`evaluated ${files.length} modules in a context with only Convex's globals\n`);
}
