/**
 * Numbers from deployment environment variables (PROVIDER_TIMEOUT_MS,
 * SYNC_INTERVAL_MINUTES, METRICS_RETENTION_DAYS, ...), parsed one way. Pure:
 * callers pass the variable's value (`env.NAME` from _generated/server).
 */

/** What a configured number must be: above a bound (else the default is used), or at least one (else raised to it). */
export type EnvNumberBound = { above: number } | { atLeast: number };

/**
 * The number in an environment variable's `value`: `fallback` when it is
 * unset, blank or not a finite number, or not above `bound.above`; raised
 * to `bound.atLeast` when below it.
 */
export function envNumber(value: string | undefined, fallback: number, bound: EnvNumberBound): number {
  if (!value?.trim()) return fallback;
  const configured = Number(value);
  if (!Number.isFinite(configured)) return fallback;
  if ("atLeast" in bound) return Math.max(bound.atLeast, configured);
  return configured > bound.above ? configured : fallback;
}
