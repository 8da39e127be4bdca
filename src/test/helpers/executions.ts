/**
 * Function executions as the whole suite sees them, and the PBKDF2 budget of
 * a query or mutation.
 *
 * Convex gives a query or mutation 1 s of user code, and WebCrypto runs
 * inside it: PBKDF2-SHA256 at 100,000 iterations costs 20–37 ms here. Every
 * query and mutation execution of every test (plain convex-test backends
 * and the cold harness alike) is held to PBKDF2_BUDGET runs, checked after
 * each test by src/test/setup.ts, so no test can pass while a function
 * would spend a third of its second deriving keys.
 *
 * - Executions are recorded by wrapping each registered function's handler
 *   when convex-test loads its module (`wrapModule`, used by newBackend and
 *   by the cold harness), with the function's kind and its path
 *   ("connections:create"; HTTP actions as "http:<METHOD> <path>").
 * - PBKDF2 runs are counted at crypto.subtle (deriveBits/deriveKey with
 *   "PBKDF2", on SubtleCrypto.prototype, installed once per test file) and
 *   attributed, through AsyncLocalStorage, to the running execution and to
 *   every enclosing execution still running (a query a mutation runs with
 *   ctx.runQuery counts against the mutation too). A scheduled function
 *   starts after its scheduler finished, so it never counts against it.
 *
 * Plain backends keep module state between executions, which could only
 * hide derivations behind a module-level cache; the project has none, and
 * the cold harness (fresh module graph per execution) is what proves that
 * for the cost tests. Both kinds of backend are checked here.
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** PBKDF2 runs one query or mutation may make: 8 × 37 ms ≈ 0.3 s of the 1 s limit. */
export const PBKDF2_BUDGET = 8;

export type ExecutionKind = "query" | "mutation" | "action" | "http";

/** One function execution as the suite recorded it. */
export interface TrackedExecution {
  path: string;
  kind: ExecutionKind;
  /** PBKDF2 runs made by it and by the executions it ran while it was running. */
  pbkdf2: number;
  running: boolean;
  parent: TrackedExecution | undefined;
}

const current = new AsyncLocalStorage<TrackedExecution>();
let recorded: TrackedExecution[] = [];

/** Runs `work` as an execution of `path`, recording it. */
export function trackExecution<T>(path: string, kind: ExecutionKind, work: () => T): T {
  const execution: TrackedExecution = { path, kind, pbkdf2: 0, running: true, parent: current.getStore() };
  recorded.push(execution);
  const finish = () => {
    execution.running = false;
  };
  try {
    const result = current.run(execution, work);
    if (result instanceof Promise) result.then(finish, finish);
    else finish();
    return result;
  } catch (error) {
    finish();
    throw error;
  }
}

/** The executions recorded since the last call, which forgets them. */
export function takeExecutions(): TrackedExecution[] {
  const taken = recorded;
  recorded = [];
  return taken;
}

/** Query and mutation executions over PBKDF2_BUDGET, as one readable message (null when none). */
export function budgetViolations(executions: readonly TrackedExecution[]): string | null {
  const over = executions.filter((execution) => (execution.kind === "query" || execution.kind === "mutation") && execution.pbkdf2 > PBKDF2_BUDGET);
  if (over.length === 0) return null;
  const lines = over.map((execution) => `  ${execution.kind} ${execution.path}: ${execution.pbkdf2} PBKDF2 runs`);
  return (
    `PBKDF2 budget exceeded: a query or mutation may run at most ${PBKDF2_BUDGET} PBKDF2 derivations ` +
    `(~37 ms each of Convex's 1 s; see src/test/helpers/executions.ts):\n${lines.join("\n")}`
  );
}

function algorithmName(algorithm: unknown): string {
  if (typeof algorithm === "string") return algorithm.toUpperCase();
  if (typeof algorithm === "object" && algorithm !== null && "name" in algorithm) {
    return String((algorithm as { name: unknown }).name).toUpperCase();
  }
  return "";
}

const INSTALLED = Symbol.for("dashtray.test.pbkdf2Counter");

/** Counts PBKDF2 derivations on SubtleCrypto.prototype for the rest of the test file (idempotent). */
export function installPbkdf2Counter(): void {
  const prototype = Object.getPrototypeOf(crypto.subtle) as Record<PropertyKey, unknown>;
  if (prototype[INSTALLED]) return;
  prototype[INSTALLED] = true;
  for (const name of ["deriveBits", "deriveKey"] as const) {
    const original = prototype[name] as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(prototype, name, {
      configurable: true,
      writable: true,
      value: function (this: SubtleCrypto, ...args: unknown[]) {
        if (algorithmName(args[0]) === "PBKDF2") {
          for (let execution = current.getStore(); execution?.running; execution = execution.parent) execution.pbkdf2++;
        }
        return original.apply(this, args);
      },
    });
  }
}

function kindOf(func: Record<string, unknown>): ExecutionKind | null {
  if (func.isQuery === true) return "query";
  if (func.isMutation === true) return "mutation";
  if (func.isAction === true) return "action";
  return null;
}

/**
 * A registered function whose handler runs `around(path, kind, run)`: a
 * prototype-linked copy, so convex-test still reads isQuery/isMutation/
 * isAction, exportArgs and exportReturns through the chain. Anything else is
 * returned unchanged.
 */
function wrapFunction(func: unknown, path: string, around: ExecutionWrapper, kind?: ExecutionKind): unknown {
  if (typeof func !== "function" && (typeof func !== "object" || func === null)) return func;
  const handler = (func as { _handler?: unknown })._handler;
  const resolvedKind = kind ?? kindOf(func as Record<string, unknown>);
  if (typeof handler !== "function" || resolvedKind === null) return func;
  const wrapped: Record<string, unknown> = Object.create(func as object);
  wrapped._handler = (...args: unknown[]) => around(path, resolvedKind, () => (handler as (...a: unknown[]) => unknown)(...args));
  return wrapped;
}

function wrapRouter(router: unknown, around: ExecutionWrapper): unknown {
  if (typeof router !== "object" || router === null || !("lookup" in router)) return router;
  const lookup = (router as { lookup: (path: string, method: string) => unknown }).lookup.bind(router);
  const wrapped: Record<string, unknown> = Object.create(router);
  wrapped.lookup = (path: string, method: string) => {
    const found = lookup(path, method);
    if (!Array.isArray(found)) return found;
    const [func, ...rest] = found as unknown[];
    return [wrapFunction(func, `http:${method} ${path}`, around, "http"), ...rest];
  };
  return wrapped;
}

/** Runs one execution: `run` calls the function's own handler. */
export type ExecutionWrapper = (path: string, kind: ExecutionKind, run: () => unknown) => unknown;

/** A module's exports with every registered function (and the HTTP router) recorded through `around`. */
export function wrapModule(modulePath: string, module: Record<string, unknown>, around: ExecutionWrapper): Record<string, unknown> {
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(module)) {
    wrapped[name] = modulePath === "http" && name === "default" ? wrapRouter(value, around) : wrapFunction(value, `${modulePath}:${name}`, around);
  }
  return wrapped;
}

/** "connections" for "../../convex/connections.ts" (a key of the src/convex glob). */
export function modulePathOf(file: string): string {
  return file.replace(/^.*\/convex\//, "").replace(/\.ts$/, "");
}

/** The src/convex glob's loaders, each module's functions recorded for the suite's budget check. */
export function trackedModules(modules: Record<string, () => Promise<unknown>>): Record<string, () => Promise<unknown>> {
  const tracked: Record<string, () => Promise<unknown>> = {};
  for (const [file, load] of Object.entries(modules)) {
    tracked[file] = async () => wrapModule(modulePathOf(file), (await load()) as Record<string, unknown>, trackExecution);
  }
  return tracked;
}
