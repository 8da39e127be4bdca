/**
 * Metric sync cost per cron cycle (`npm run bench`), counted cold: every
 * function execution loads a fresh module graph, as in Convex. Prints, for
 * each fleet, function executions and PBKDF2 runs of one cycle, per
 * connection and per project, next to the previous design (one action per
 * connection; its formula in previousDesignCost). Counts, never times:
 * elapsed time is printed for information only.
 */
import { expect, test, vi } from "vitest";
import { SYNC_GROUP_SIZE } from "../convex/sync/policy";
import {
  HARNESS_TRANSIENT_ERRORS,
  describeSynced,
  measureCycle,
  newColdBackend,
  previousDesignCost,
  seedSyncFleet,
} from "../test/helpers/syncCost";
import { useFakeProviders } from "../test/helpers/secrets";

const fake = useFakeProviders();

const FLEETS = [
  { projects: 4, perProject: 10 },
  { projects: 100, perProject: 10 },
  { projects: 20, perProject: 50 },
];

test("sync cycle cost", async () => {
  const lines: string[] = [];
  for (const { projects, perProject } of FLEETS) {
    vi.stubEnv("PROVIDER_TIMEOUT_MS", "60000");
    const { t, counter } = newColdBackend();
    const ids = await seedSyncFleet(t, projects, perProject);
    const started = performance.now();
    const cost = await measureCycle(t, counter, fake(), ids, projects);
    const seconds = (performance.now() - started) / 1000;
    // Every connection's sync ran; any not synced failed for a reason of the harness, explained in the line.
    expect(cost.attempted).toBe(ids.length);
    for (const reason of Object.keys(cost.notSynced)) expect(HARNESS_TRANSIENT_ERRORS).toContain(reason);
    expect(cost.executions).toBeLessThanOrEqual(0.5 * ids.length);
    // The bound, for projects that fit one group; larger ones cost that per group.
    if (perProject <= SYNC_GROUP_SIZE) expect(cost.pbkdf2).toBeLessThanOrEqual(2 * projects);
    const previous = previousDesignCost(ids.length);
    lines.push(
      `${String(ids.length).padStart(5)} connections in ${String(projects).padStart(3)} projects: ` +
        `${cost.executions} executions (${(cost.executions / ids.length).toFixed(2)}/connection), ` +
        `${cost.pbkdf2} PBKDF2 (${(cost.pbkdf2 / projects).toFixed(1)}/project); ` +
        `previous design ${previous.executions} executions (${(previous.executions / ids.length).toFixed(2)}/connection), ` +
        `${previous.pbkdf2} PBKDF2; ${describeSynced(cost)}; ${seconds.toFixed(1)} s in convex-test`,
    );
  }
  process.stdout.write(`\nSync cycle cost (cold, counted)\n${lines.join("\n")}\n`);
});
