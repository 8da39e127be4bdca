// The layering of src/convex (docs/architecture.md), checked on its import
// graph: no import cycle, lower layers never import upper ones, no file over
// 400 lines. Imports are read with the TypeScript scanner (type-only imports
// count: a cycle of types is still a cycle for a reader).
import ts from "typescript";
import { describe, expect, test } from "vitest";
import architectureDoc from "../../../docs/architecture.md?raw";

const SOURCES = import.meta.glob<string>(["../../convex/**/*.ts", "!../../convex/_generated/**"], {
  query: "?raw",
  import: "default",
  eager: true,
});

/** Source text by path relative to src/convex, e.g. "providers/transport.ts". */
const files = new Map(Object.entries(SOURCES).map(([path, text]) => [path.replace("../../convex/", ""), text]));

/** Normalizes "a/./b/../c" into "a/c". */
function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== "." && part !== "") parts.push(part);
  }
  return parts.join("/");
}

/** The module an import specifier names: a file of src/convex, "_generated/…", or the package name. */
function resolve(from: string, specifier: string): string {
  if (!specifier.startsWith(".")) return specifier;
  const target = normalize(`${from.split("/").slice(0, -1).join("/")}/${specifier}`);
  if (target.startsWith("_generated/")) return target;
  for (const candidate of [target, `${target}.ts`, `${target}/index.ts`]) if (files.has(candidate)) return candidate;
  throw new Error(`${from}: cannot resolve ${specifier}`);
}

/** Every file's imports (src/convex files, _generated modules and packages), resolved. */
const imports = new Map(
  [...files].map(([path, text]) => [
    path,
    [...new Set(ts.preProcessFile(text, true, true).importedFiles.map((file) => resolve(path, file.fileName)))],
  ]),
);

/** The strongly connected components of more than one file (Tarjan), each sorted: the import cycles. */
function importCycles(): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (file: string) => {
    index.set(file, counter);
    low.set(file, counter++);
    stack.push(file);
    onStack.add(file);
    for (const next of imports.get(file) ?? []) {
      if (!files.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file)!, index.get(next)!));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || (imports.get(file) ?? []).includes(file)) cycles.push(component.sort());
    }
  };
  for (const file of [...files.keys()].sort()) if (!index.has(file)) visit(file);
  return cycles.sort();
}

/**
 * Cycles known when this check was written (issue 17), to be broken (then
 * taken off this list); any other cycle fails the test.
 */
const KNOWN_CYCLES: string[][] = [];

/** Files over 400 lines when this check was written (issue 17), to be split (then taken off this list); no other file may grow past 400. */
const KNOWN_LONG_FILES: string[] = [];
const MAX_LINES = 400;

/** The cycles that are not in KNOWN_CYCLES. */
function newCycles(): string[][] {
  const known = new Set(KNOWN_CYCLES.map((cycle) => cycle.join(" ")));
  return importCycles().filter((cycle) => !known.has(cycle.join(" ")));
}

test("src/convex has no import cycle but the known ones", () => {
  expect(files.size).toBeGreaterThan(40);
  expect(newCycles(), "import cycles (break them: move the shared part to a lower module)").toEqual([]);
});

test("the cycle check finds a cycle", () => {
  imports.set("lib/hash.ts", [...(imports.get("lib/hash.ts") ?? []), "lib/encoding.ts"]);
  imports.set("lib/encoding.ts", [...(imports.get("lib/encoding.ts") ?? []), "lib/hash.ts"]);
  try {
    expect(newCycles()).toEqual([["lib/encoding.ts", "lib/hash.ts"]]);
  } finally {
    imports.set("lib/hash.ts", (imports.get("lib/hash.ts") ?? []).filter((file) => file !== "lib/encoding.ts"));
    imports.set("lib/encoding.ts", (imports.get("lib/encoding.ts") ?? []).filter((file) => file !== "lib/hash.ts"));
  }
  expect(newCycles()).toEqual([]);
});

test(`no file over ${MAX_LINES} lines but the known ones`, () => {
  const long = [...files].filter(([, text]) => text.split("\n").length > MAX_LINES + 1).map(([path]) => path);
  expect(long.filter((path) => !KNOWN_LONG_FILES.includes(path)), `files over ${MAX_LINES} lines (split them by concern)`).toEqual([]);
  expect(KNOWN_LONG_FILES.filter((path) => !long.includes(path)), "KNOWN_LONG_FILES names files no longer over the limit: take them off").toEqual([]);
});

describe("layers: what each may import (docs/architecture.md)", () => {
  /** Every import of the files under `folder` that `allowed` refuses, as "file -> import". */
  function violations(folder: string, allowed: (target: string) => boolean): string[] {
    return [...imports]
      .filter(([path]) => path.startsWith(folder))
      .flatMap(([path, targets]) => targets.filter((target) => !allowed(target)).map((target) => `${path} -> ${target}`));
  }

  test("lib/ (the encryption core and pure helpers) imports only lib/: no Convex, no package", () => {
    expect(violations("lib/", (target) => target.startsWith("lib/"))).toEqual([]);
  });

  test("providers/ imports only providers/, lib/, the error contract, validators' types and the env", () => {
    const allowed = (target: string) =>
      target.startsWith("providers/") ||
      target.startsWith("lib/") ||
      ["errors.ts", "validators.ts", "_generated/server", "env.ts"].includes(target);
    expect(violations("providers/", allowed)).toEqual([]);
  });

  test("access/ and audit/ (builders, identity, roles, limits, audit trail) import no public module, engine or provider", () => {
    const allowed = (folder: string) => (target: string) =>
      target.startsWith(folder) ||
      target.startsWith("lib/") ||
      target.startsWith("_generated/") ||
      ["errors.ts", "validators.ts", "schema.ts", "env.ts"].includes(target) ||
      !target.endsWith(".ts"); // a package
    expect(violations("access/", (target) => allowed("access/")(target) || target.startsWith("audit/"))).toEqual([]);
    expect(violations("audit/", allowed("audit/"))).toEqual([]);
  });

  test("engines (storedSecrets/, reencryption/, sync/, oauth/, jobs/, metricHistory/, upgrade/) import no public module", () => {
    const PUBLIC = ["users", "projects", "invitations", "connections", "metrics", "insights", "aiKeys", "apiKeys", "auditLog", "ai", "keyRotation", "upgrade", "http"].map(
      (name) => `${name}.ts`,
    );
    for (const folder of ["storedSecrets/", "reencryption/", "sync/", "oauth/", "jobs/", "metricHistory/", "upgrade/"]) {
      expect(violations(folder, (target) => !PUBLIC.includes(target)), `${folder} reaches into a public module: move the shared part down`).toEqual([]);
    }
  });

  test("providers/errors.ts imports nothing; errors.ts (the dashboard's contract) only the lower layers' error types", () => {
    expect(imports.get("providers/errors.ts")).toEqual([]);
    expect(imports.get("errors.ts")?.sort()).toEqual(["convex/values", "lib/errors.ts", "providers/errors.ts"]);
  });
});

/** Every src/convex file `start` reaches through imports, itself included (what a function in it loads). */
function importClosure(start: string): Set<string> {
  const reached = new Set([start]);
  const pending = [start];
  while (pending.length > 0) {
    for (const next of imports.get(pending.pop()!) ?? []) {
      if (files.has(next) && !reached.has(next)) {
        reached.add(next);
        pending.push(next);
      }
    }
  }
  return reached;
}

test("the AI key's modules (ai.ts, aiKeys.ts) import no integration, directly or not", () => {
  // Issue 17: upgrade/defaults.ts (the integration registry) put every integration in ai.ts's closure (36 files).
  for (const start of ["ai.ts", "aiKeys.ts"]) {
    const integrations = [...importClosure(start)].filter((path) => path.startsWith("providers/integrations/"));
    expect(integrations, `${start} reaches integrations`).toEqual([]);
  }
  // The closure follows imports through other files: ai.ts reaches the encryption core, connections.ts Stripe.
  expect(importClosure("ai.ts").has("lib/cipher.ts")).toBe(true);
  expect(importClosure("connections.ts").has("providers/integrations/stripe.ts")).toBe(true);
});

test("nothing under providers/ logs (a request or an answer could reach the log)", () => {
  const logging = [...files].filter(([path, text]) => path.startsWith("providers/") && /\bconsole\./.test(text)).map(([path]) => path);
  expect(logging).toEqual([]);
});

test("every file the walks of docs/architecture.md list exists", () => {
  const walks = architectureDoc.slice(architectureDoc.indexOf("## The two walks"), architectureDoc.indexOf("## Deploying"));
  const listed = [...walks.matchAll(/^\| \d+ \| `([^`]+)` \|/gm)].map((match) => match[1]!);
  expect(listed.length).toBeGreaterThan(15);
  expect(listed.filter((path) => !files.has(path)), "files the walks in docs/architecture.md name that no longer exist: update the walks").toEqual([]);
  // The counts in the headings are the rows below them.
  for (const [, count, rows] of walks.matchAll(/: (\d+) files\n\n((?:\|.*\n)+)/g)) {
    expect(rows!.trim().split("\n").length - 2, "a walk's count in docs/architecture.md differs from its rows").toBe(Number(count));
  }
});

test("one HTTP transport: only providers/transport.ts calls fetch", () => {
  const callers = [...files].filter(([, text]) => /\bfetch\s*\(/.test(text)).map(([path]) => path);
  expect(callers, "call providers/transport.ts (send, requestJson) instead of fetch").toEqual(["providers/transport.ts"]);
});

test("environment numbers are parsed one way (lib/envNumber.ts)", () => {
  const parsers = [...files].filter(([, text]) => /(?<![\w.])(Number|parseInt|parseFloat)\(\s*env[.[]/.test(text)).map(([path]) => path);
  expect(parsers, "parse environment numbers with lib/envNumber.ts").toEqual([]);
});

describe("one way to do each job of access/ (issue 17)", () => {
  /** Files of src/convex whose text matches `pattern`. */
  const matching = (pattern: RegExp) => [...files].filter(([, text]) => pattern.test(text)).map(([path]) => path).sort();

  test("one lookup of a users row by token identifier: access/identity.ts findUserByToken", () => {
    expect(matching(/"by_tokenIdentifier"/), "look users up with access/identity.ts findUserByToken").toEqual(["access/identity.ts", "schema.ts"]);
  });

  test("one way to produce RATE_LIMITED: access/rateLimits.ts rateLimited", () => {
    expect(matching(/"RATE_LIMITED"/), "throw access/rateLimits.ts rateLimited(retryAt, what)").toEqual(["access/rateLimits.ts", "errors.ts"]);
  });

  test("convex-helpers' rate-limit table is read and written only through the library, in access/rateLimits.ts", () => {
    expect(matching(/(query|delete|insert|patch|replace)\(\s*"rateLimits"/)).toEqual(["access/rateLimits.ts"]);
  });

  test("no exception as control flow around a role check: findProjectRole answers without throwing", () => {
    expect(matching(/try\s*\{\s*(await\s+)?requireProjectRole\(/)).toEqual([]);
  });

  test("reading metrics needs no sync engine: metrics.ts reaches no sync module, projects.ts and invitations.ts import none", () => {
    const isSync = (file: string) => file.startsWith("sync/") || file === "metricsSync.ts";
    const closure = new Set<string>();
    const walk = (file: string) => {
      if (closure.has(file) || !files.has(file)) return;
      closure.add(file);
      for (const next of imports.get(file) ?? []) walk(next);
    };
    walk("metrics.ts");
    expect([...closure].filter(isSync), "metrics.ts reaches the sync engine (caps live in access/caps.ts)").toEqual([]);
    for (const module of ["projects.ts", "invitations.ts"]) expect((imports.get(module) ?? []).filter(isSync)).toEqual([]);
  });
});
