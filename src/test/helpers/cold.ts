/**
 * A production-faithful cost harness. Convex runs every function execution
 * (each query, mutation, action, nested runQuery/runMutation/runAction,
 * scheduled function and HTTP action) in a fresh V8 context, so nothing a
 * module keeps survives from one execution to the next. convex-test keeps
 * module state; this harness takes it away and counts, from outside the
 * project's code, what each execution really costs:
 *
 * - Fresh module graph per execution: convex-test asks its module loader for
 *   a function's module every time it runs one (resolveFunction in
 *   convex-test/dist/index.js, for top-level calls, nested runQuery /
 *   runMutation / runAction and ctx.runQuery inside mutations alike;
 *   scheduled functions go through `fun`, which resolves the module twice;
 *   `t.fetch` loads the `http` module once per request). Each loader here
 *   calls `vi.resetModules()` first, so the import that follows evaluates
 *   the project's modules (lib included) anew. convex-test itself is
 *   imported statically by this file and never re-imported, so its state
 *   (database, scheduler) is untouched. Loads are serialised so that one
 *   reset never lands in the middle of another load.
 * - Executions: every registered function's handler is wrapped on load, so
 *   each execution is recorded once with its path ("connections:create"),
 *   however often convex-test loaded its module; HTTP actions are recorded
 *   as "http:<METHOD> <path>".
 * - WebCrypto: `crypto.subtle.deriveBits` / `deriveKey` / `sign` are wrapped
 *   while a harness is installed and calls are counted by algorithm (PBKDF2
 *   derivations; HMAC signs, which is what the project's HKDF is made of),
 *   in total and per execution (the execution running when the call was made,
 *   tracked with AsyncLocalStorage).
 *
 * Use `useColdHarness()` in a test file: it installs the crypto counters
 * before each test and restores crypto.subtle after it.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { convexTest } from "convex-test";
import { afterEach, beforeEach, vi } from "vitest";
import schema from "../../convex/schema";
import { modulePathOf, trackExecution, wrapModule, type ExecutionWrapper } from "./executions";

const modules = import.meta.glob("../../convex/**/*.ts");

/** What one function execution did. */
export interface Execution {
  /** "module:export" for queries, mutations and actions; "http:<METHOD> <path>" for HTTP actions. */
  path: string;
  pbkdf2: number;
  hmac: number;
}

/** Counts since the harness was installed (or since `reset`). */
export interface ColdCounts {
  /** Every function execution, in the order they started. */
  executions: Execution[];
  /** Module paths convex-test loaded (each load a fresh graph); ≥ executions. */
  loads: string[];
  /** PBKDF2 deriveBits/deriveKey calls, inside executions or not. */
  pbkdf2: number;
  /** HMAC sign calls (the project's HKDF: two per derived key or id, plus one per extract), inside executions or not. */
  hmac: number;
  /** Milliseconds from each PBKDF2 call to its result, summed (benchmarks only; tests never assert time). */
  pbkdf2Ms: number;
}

type Subtle = SubtleCrypto;
type DeriveBits = Subtle["deriveBits"];
type DeriveKey = Subtle["deriveKey"];
type Sign = Subtle["sign"];

function algorithmName(algorithm: unknown): string {
  if (typeof algorithm === "string") return algorithm.toUpperCase();
  if (typeof algorithm === "object" && algorithm !== null && "name" in algorithm) {
    return String((algorithm as { name: unknown }).name).toUpperCase();
  }
  return "";
}

/** The harness's counters and the cold backend factory. */
export class ColdHarness {
  counts: ColdCounts = { executions: [], loads: [], pbkdf2: 0, hmac: 0, pbkdf2Ms: 0 };
  private readonly current = new AsyncLocalStorage<Execution>();
  private loadChain: Promise<unknown> = Promise.resolve();
  private restoreSubtle: (() => void) | null = null;
  /** Module namespaces as loaded, latest last (to check that each load is a fresh instance). */
  readonly loadedModules: { path: string; module: Record<string, unknown> }[] = [];

  /** Starts counting WebCrypto derivations on the global crypto.subtle. */
  install(): void {
    if (this.restoreSubtle) return;
    const subtle = crypto.subtle;
    const originalBits = subtle.deriveBits;
    const originalKey = subtle.deriveKey;
    const originalSign = subtle.sign;
    let active = true;
    const count = <T>(algorithm: unknown, run: () => Promise<T>): Promise<T> => {
      // A wrapper put back by someone else's restore (e.g. vi.restoreAllMocks) after uninstall counts nothing.
      if (!active) return run();
      const name = algorithmName(algorithm);
      const execution = this.current.getStore();
      if (name === "HMAC") {
        this.counts.hmac++;
        if (execution) execution.hmac++;
      }
      if (name !== "PBKDF2") return run();
      this.counts.pbkdf2++;
      if (execution) execution.pbkdf2++;
      const counts = this.counts;
      const started = performance.now();
      const result = run();
      const addTime = () => {
        counts.pbkdf2Ms += performance.now() - started;
      };
      result.then(addTime, addTime);
      return result;
    };
    const deriveBits = function (this: Subtle, ...args: Parameters<DeriveBits>) {
      return count(args[0], () => originalBits.apply(this, args));
    } as DeriveBits;
    const deriveKey = function (this: Subtle, ...args: Parameters<DeriveKey>) {
      return count(args[0], () => originalKey.apply(this, args));
    } as DeriveKey;
    const sign = function (this: Subtle, ...args: Parameters<Sign>) {
      return count(args[0], () => originalSign.apply(this, args));
    } as Sign;
    // The methods live on SubtleCrypto.prototype: own properties shadow them. Restoring puts back
    // whatever own property was there before (another harness's wrapper) or deletes ours.
    const saved = (["deriveBits", "deriveKey", "sign"] as const).map((name) => [name, Object.getOwnPropertyDescriptor(subtle, name)] as const);
    Object.defineProperty(subtle, "deriveBits", { value: deriveBits, configurable: true, writable: true });
    Object.defineProperty(subtle, "deriveKey", { value: deriveKey, configurable: true, writable: true });
    Object.defineProperty(subtle, "sign", { value: sign, configurable: true, writable: true });
    this.restoreSubtle = () => {
      active = false;
      for (const [name, descriptor] of saved) {
        if (descriptor) Object.defineProperty(subtle, name, descriptor);
        else delete (subtle as unknown as Record<string, unknown>)[name];
      }
    };
  }

  /** Restores crypto.subtle. */
  uninstall(): void {
    this.restoreSubtle?.();
    this.restoreSubtle = null;
  }

  /** Forgets every count (e.g. after seeding). */
  reset(): void {
    this.counts = { executions: [], loads: [], pbkdf2: 0, hmac: 0, pbkdf2Ms: 0 };
    this.loadedModules.length = 0;
  }

  /** Runs `work` and returns what happened during it (counts keep accumulating too). */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; counts: ColdCounts }> {
    const before = {
      executions: this.counts.executions.length,
      loads: this.counts.loads.length,
      pbkdf2: this.counts.pbkdf2,
      hmac: this.counts.hmac,
      pbkdf2Ms: this.counts.pbkdf2Ms,
    };
    const result = await work();
    return {
      result,
      counts: {
        executions: this.counts.executions.slice(before.executions),
        loads: this.counts.loads.slice(before.loads),
        pbkdf2: this.counts.pbkdf2 - before.pbkdf2,
        hmac: this.counts.hmac - before.hmac,
        pbkdf2Ms: this.counts.pbkdf2Ms - before.pbkdf2Ms,
      },
    };
  }

  /** One execution: recorded here (and for the suite's PBKDF2 budget), its crypto counted against it. */
  private readonly runExecution: ExecutionWrapper = (path, kind, run) => {
    const execution: Execution = { path, pbkdf2: 0, hmac: 0 };
    this.counts.executions.push(execution);
    return trackExecution(path, kind, () => this.current.run(execution, run));
  };

  /** The glob's loaders, each loading a fresh module graph and wrapping its functions. */
  coldModules(): Record<string, () => Promise<unknown>> {
    const cold: Record<string, () => Promise<unknown>> = {};
    for (const [file, load] of Object.entries(modules)) {
      const modulePath = modulePathOf(file);
      cold[file] = () => {
        const next = this.loadChain.then(async () => {
          vi.resetModules();
          const module = (await load()) as Record<string, unknown>;
          this.counts.loads.push(modulePath);
          this.loadedModules.push({ path: modulePath, module });
          return wrapModule(modulePath, module, this.runExecution);
        });
        // A failed load must not block the ones after it.
        this.loadChain = next.catch(() => undefined);
        return next;
      };
    }
    return cold;
  }

  /**
   * A convex-test backend whose every function execution runs on a fresh
   * module graph, enforcing Convex's per-transaction limits unless told not to.
   */
  backend(options: { transactionLimits?: boolean } = {}) {
    return convexTest({ schema, modules: this.coldModules(), transactionLimits: options.transactionLimits ?? true });
  }
}

export type ColdBackend = ReturnType<ColdHarness["backend"]>;

/**
 * One harness for the test file: counters installed on crypto.subtle and
 * reset before each test, crypto.subtle restored after it.
 */
export function useColdHarness(): ColdHarness {
  const harness = new ColdHarness();
  beforeEach(() => {
    harness.reset();
    harness.install();
  });
  afterEach(() => {
    harness.uninstall();
  });
  return harness;
}

/** The most PBKDF2 runs any one execution of `path` made (0 if none ran). */
export function maxPbkdf2(counts: ColdCounts, path?: string): number {
  const runs = counts.executions.filter((execution) => path === undefined || execution.path === path);
  return Math.max(0, ...runs.map((execution) => execution.pbkdf2));
}
