/**
 * The secret-touching calls whose cold cost the cost tests check and
 * `npm run bench` prints, and the data they run on (written through the
 * public API, so it follows whatever format the code writes).
 */
import { api, internal } from "../../convex/_generated/api";
import type { Id } from "../../convex/_generated/dataModel";
import type { ColdBackend, ColdHarness } from "./cold";
import { identity } from "./convex";
import { SECRETS } from "./secrets";

export type Caller = ReturnType<ColdBackend["withIdentity"]>;

/** A project with two Stripe connections, a metric point and alice's OpenAI key, all written through the public API. */
export interface World {
  t: ColdBackend;
  alice: Caller;
  projectId: Id<"projects">;
  connectionId: Id<"connections">;
  /** Another connection of the same project (a sync group touches several secrets). */
  secondConnectionId: Id<"connections">;
}

export async function world(harness: ColdHarness): Promise<World> {
  const t = harness.backend();
  const alice = t.withIdentity(identity("alice"));
  const projectId = await alice.mutation(api.projects.create, { name: "Acme" });
  const connectionId = await alice.mutation(api.connections.create, {
    projectId,
    service: "stripe",
    credentials: { secretKey: SECRETS.stripeKey },
  });
  const secondConnectionId = await alice.mutation(api.connections.create, {
    projectId,
    service: "stripe",
    name: "Stripe (second account)",
    credentials: { secretKey: SECRETS.stripeKey },
  });
  await alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey });
  await t.run((ctx) =>
    ctx.db.insert("metrics", { connectionId, projectId, name: "balance_usd", value: 12, timestamp: Date.UTC(2025, 0, 1) }),
  );
  return { t, alice, projectId, connectionId, secondConnectionId };
}

export interface Case {
  name: string;
  /** True when the call reads a stored secret (so it meets the key the secret is under). */
  reads: boolean;
  /** True when the call writes a new secret (under the current key). */
  writes: boolean;
  call: (w: World) => Promise<unknown>;
}

export const CASES: Case[] = [
  {
    name: "connections.create",
    reads: false,
    writes: true,
    call: ({ alice, projectId }) =>
      alice.mutation(api.connections.create, { projectId, service: "stripe", credentials: { secretKey: `${SECRETS.stripeKey}2` } }),
  },
  {
    name: "connections.updateCredentials",
    reads: false,
    writes: true,
    call: ({ alice, connectionId }) =>
      alice.mutation(api.connections.updateCredentials, { connectionId, credentials: { secretKey: SECRETS.stripeKey } }),
  },
  {
    name: "connections.syncMetrics",
    reads: true,
    writes: false,
    call: ({ alice, connectionId }) => alice.action(api.connections.syncMetrics, { connectionId }),
  },
  {
    name: "sync/run.ts syncGroup (the cron's unit: 2 connections of a project)",
    reads: true,
    writes: false,
    call: ({ t, connectionId, secondConnectionId }) =>
      t.action(internal.sync.run.syncGroup, { connectionIds: [connectionId, secondConnectionId] }),
  },
  {
    name: "aiKeys.set",
    reads: false,
    writes: true,
    call: ({ alice }) => alice.mutation(api.aiKeys.set, { provider: "openai", apiKey: SECRETS.openaiKey }),
  },
  {
    name: "ai.generateInsight",
    reads: true,
    writes: false,
    call: ({ alice, projectId }) => alice.action(api.ai.generateInsight, { projectId }),
  },
];

