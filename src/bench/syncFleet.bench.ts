/**
 * Sync cost per cron cycle over realistic fleets, and the 24-hour cost of a
 * connection that always fails authentication (`npm run bench`), counted
 * cold (helpers/cold.ts): a fresh module graph per function execution,
 * executions and PBKDF2 counted from outside the project's code.
 */
import { test, vi } from "vitest";
import { measureCycle, measureFailingDay, newColdBackend, seedFleetFast } from "../test/helpers/syncCost";
import { useFakeProviders } from "../test/helpers/secrets";

const fake = useFakeProviders();

const FLEETS = [
  { projects: 4, perProject: 10 },
  { projects: 20, perProject: 2 },
  { projects: 1000, perProject: 1 },
  { projects: 100, perProject: 10 },
];

const lines: string[] = [];

test.each(FLEETS)("sync cycle over $projects projects × $perProject connections", async ({ projects, perProject }) => {
  vi.stubEnv("PROVIDER_TIMEOUT_MS", "60000");
  const { t, counter } = newColdBackend();
  const ids = await seedFleetFast(t, projects, perProject);
  const cost = await measureCycle(t, counter, fake(), ids, projects);
  const n = ids.length;
  lines.push(
    `${String(projects).padStart(5)} × ${String(perProject).padStart(2)}: ${cost.executions} executions ` +
      `(${(cost.executions / n).toFixed(3)}/connection), ${cost.pbkdf2} PBKDF2 ` +
      `(${((cost.pbkdf2 * 25) / n).toFixed(2)} per 25 connections), ${cost.providerRequests} provider requests, synced ${cost.syncedOnce}/${n}`,
  );
});

test("a connection that always fails authentication, over 24 hours", async () => {
  const { t, counter } = newColdBackend();
  const [connectionId] = await seedFleetFast(t, 1, 1);
  fake().setMode("github.repo", 401);
  const day = await measureFailingDay(t, counter, fake(), connectionId!);
  lines.push(
    `always 401, 24 h: ${day.providerRequests} provider requests, ${day.executions} executions, ${day.pbkdf2} PBKDF2; ` +
      `ends ${day.status}${day.stillScheduled ? " (still scheduled)" : " (not scheduled)"}: ${day.lastError ?? ""}`,
  );
  process.stdout.write(`\nSync fleet cost (cold, counted)\n${lines.join("\n")}\n`);
});
