// What the dashboard's repository writes against the typed client: every
// screen's calls (docs/api.md, "The dashboard's screens"), typed end to end,
// and the error contract. Compiled by CI (npm run check:client) with
// create-vite's react-ts options, and again with stricter ones; never run.
// Plain ConvexClient rather than React hooks, so the fixture needs no React:
// useQuery takes the same function references and arguments.
import { ConvexClient } from "convex/browser";
import type { FunctionArgs, FunctionReturnType } from "convex/server";
import { api } from "@dashtray/backend-client/api";
import type { Doc, Id } from "@dashtray/backend-client/dataModel";
import { appErrorData, errorCodes, isAppErrorData, type AppErrorData, type ErrorCode } from "@dashtray/backend-client/errors";

type LatestMetric = FunctionReturnType<typeof api.metrics.latest>[number];
type Series = FunctionReturnType<typeof api.metrics.series>;
type InsightPage = FunctionReturnType<typeof api.insights.list>;
type Me = FunctionReturnType<typeof api.users.me>;
type SeriesArgs = FunctionArgs<typeof api.metrics.series>;

const DAY = 24 * 60 * 60 * 1000;

/** Every error the dashboard can get, handled by code; adding a code stops this compiling. */
export function describeError(data: AppErrorData): string {
  switch (data.code) {
    case "RATE_LIMITED":
      return `Try again at ${new Date(data.retryAt).toLocaleTimeString()}`;
    case "ENCRYPTION_UNAVAILABLE":
      return "variable" in data ? `Ask the administrator to fix ${data.variable}` : "Ask the administrator to restore the root salt";
    case "PROVIDER_ERROR":
      return `${data.service}: ${data.reason}${data.status === undefined ? "" : ` (${data.status})`}`;
    case "INVALID_ARGUMENT":
      return data.field === undefined ? data.message : `${data.field}: ${data.message}`;
    case "DECRYPTION_FAILED":
      return data.reason ?? data.message;
    case "LIMIT_REACHED":
      return `${data.message} (at most ${data.limit}: ${data.reason === "PROJECTS_PER_USER" ? "projects" : "connections"})`;
    case "UNAUTHENTICATED":
    case "FORBIDDEN":
    case "NOT_FOUND":
    case "INVALID_CREDENTIALS":
    case "CONFLICT":
    case "INTERNAL":
      return data.message;
    default: {
      const unhandled: never = data;
      return unhandled;
    }
  }
}

/** A caught error as the UI shows it; null for anything that is not the backend's (a bug, the network). */
export function messageOf(error: unknown): string | null {
  const data = appErrorData(error);
  return data === null ? null : describeError(data);
}

/** The error data a thrown value carries, also when another copy of `convex` threw it. */
export function dataOf(value: { data?: unknown }): AppErrorData | null {
  return isAppErrorData(value.data) ? value.data : null;
}

export const knownCodes: readonly ErrorCode[] = errorCodes;

/** The overview screen: the signed-in user, their projects, the latest value of every metric. */
export function watchOverview(client: ConvexClient, projectId: Id<"projects">, show: (me: Me, latest: LatestMetric[]) => void) {
  let me: Me = null;
  const stopMe = client.onUpdate(api.users.me, {}, (value) => {
    me = value;
  });
  const stopLatest = client.onUpdate(api.metrics.latest, { projectId }, (latest) => {
    show(me, latest);
  });
  return () => {
    stopMe();
    stopLatest();
  };
}

/** A chart of one metric over the last `days` days. */
export function watchChart(client: ConvexClient, connectionId: Id<"connections">, name: string, days: number, draw: (series: Series) => void) {
  const to = Date.now();
  const args: SeriesArgs = { connectionId, name, from: to - days * DAY, to };
  return client.onUpdate(api.metrics.series, args, (series) => {
    const last = series.points[series.points.length - 1];
    if (last !== undefined && series.resolution === "day") draw(series);
    else draw(series);
  });
}

/** The insights screen: generate one, then read the newest page. */
export async function insights(client: ConvexClient, projectId: Id<"projects">): Promise<InsightPage> {
  const insight = await client.action(api.ai.generateInsight, { projectId });
  const page = await client.query(api.insights.list, { projectId, paginationOpts: { numItems: 20, cursor: null } });
  const first = page.page[0];
  if (first !== undefined && first.insightId === insight.insightId) console.info(first.askedBy.name ?? "a former member", first.model);
  return page;
}

/** The settings screens: rename, pause and resume a connection, remove the project. */
export async function settings(client: ConvexClient, project: Pick<Doc<"projects">, "_id" | "name">, connectionId: Id<"connections">) {
  await client.mutation(api.projects.rename, { projectId: project._id, name: `${project.name} (old)` });
  const paused: Doc<"connections">["status"] = await client.mutation(api.connections.pause, { connectionId });
  const resumed = await client.mutation(api.connections.resume, { connectionId });
  try {
    await client.mutation(api.projects.remove, { projectId: project._id });
  } catch (error) {
    console.info(messageOf(error));
  }
  return [paused, resumed] as const;
}
