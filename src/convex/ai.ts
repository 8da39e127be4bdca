/**
 * AI insights: the caller's own AI key (salt: their user id) is decrypted
 * inside the action, sent only to its provider, and never stored, returned
 * or logged. The prompt holds the project's recent metrics, never secrets.
 */
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, internalQuery } from "./_generated/server";
import { checkApiKey, completeText } from "./aiProviders";
import { requireProjectRole } from "./auth";
import { appError, appErrorCode } from "./errors";
import { userAction } from "./functions";
import { isProviderError, providerAppError } from "./integrations/providerError";
import { decryptAiKey, loadKeyring, readRootSalt } from "./secrets";
import { aiProviderValidator, insightValidator, type Insight } from "./validators";

/** Most recent metric points an insight looks at. */
export const MAX_METRICS_IN_PROMPT = 200;
/** Longest API key verifyKey accepts (real keys are far shorter). */
const MAX_API_KEY_LENGTH = 1024;

const SYSTEM_PROMPT =
  "You are an analytics assistant for a SaaS dashboard. Given the latest metrics of a project, " +
  "write 2 to 4 short, concrete observations (trends, risks, next steps) in plain text. " +
  "Metrics named balance.* are amounts in the currency's smallest unit (e.g. cents).";

/** One metric of one connection over the prompt's window. */
interface MetricLine {
  connection: string;
  name: string;
  latest: number;
  latestAt: number;
  earliest: number;
  earliestAt: number;
}

/** Latest and earliest value of each (connection, metric) among points sorted newest first. */
function summarize(points: Doc<"metrics">[], connectionLabel: (id: Id<"connections">) => string): MetricLine[] {
  const lines = new Map<string, MetricLine>();
  for (const point of points) {
    const key = `${point.connectionId}/${point.name}`;
    const line = lines.get(key);
    if (line) {
      line.earliest = point.value;
      line.earliestAt = point.timestamp;
    } else {
      lines.set(key, {
        connection: connectionLabel(point.connectionId),
        name: point.name,
        latest: point.value,
        latestAt: point.timestamp,
        earliest: point.value,
        earliestAt: point.timestamp,
      });
    }
  }
  return [...lines.values()];
}

/** The user prompt: one line per metric with its change over the window. */
export function insightPrompt(projectName: string, lines: MetricLine[]): string {
  const body = lines.map((line) => {
    const change =
      line.earliestAt === line.latestAt ? "" : ` (was ${line.earliest} at ${new Date(line.earliestAt).toISOString()})`;
    return `- ${line.connection} / ${line.name}: ${line.latest} at ${new Date(line.latestAt).toISOString()}${change}`;
  });
  return `Project: ${projectName}\nRecent metrics:\n${body.join("\n")}`;
}

/**
 * Everything generateInsight needs, after checking that `userId` is a member
 * of the project: the caller's AI key ciphertext (internal only) and the
 * project's recent metrics. NOT_FOUND without an AI key or any metrics.
 */
export const loadInsightInput = internalQuery({
  args: { projectId: v.id("projects"), userId: v.union(v.id("users"), v.null()) },
  returns: v.object({
    userId: v.id("users"),
    aiKeyId: v.id("aiKeys"),
    provider: aiProviderValidator,
    encryptedKey: v.string(),
    /** The key row's secret version (bound into v2 ciphertext; absent on old rows). */
    secretVersion: v.optional(v.number()),
    /** The deployment's root salt, read here so decrypting costs no extra call. */
    rootSalt: v.union(v.string(), v.null()),
    prompt: v.string(),
  }),
  handler: async (ctx, { projectId, userId }) => {
    const { project, membership } = await requireProjectRole(ctx, userId, projectId, "member");
    const keys = await ctx.db
      .query("aiKeys")
      .withIndex("by_userId", (q) => q.eq("userId", membership.userId))
      .take(10);
    const aiKey = keys
      .filter((key) => key.encryptedKey !== undefined)
      .reduce<Doc<"aiKeys"> | null>((newest, key) => (newest && newest.updatedAt >= key.updatedAt ? newest : key), null);
    if (!aiKey?.encryptedKey) throw appError("NOT_FOUND", "Set an AI key first");

    const points = await ctx.db
      .query("metrics")
      .withIndex("by_projectId_and_timestamp", (q) => q.eq("projectId", projectId))
      .order("desc")
      .take(MAX_METRICS_IN_PROMPT);
    if (points.length === 0) throw appError("NOT_FOUND", "No metrics yet: sync a connection first");
    const labels = new Map<Id<"connections">, string>();
    for (const connectionId of new Set(points.map((point) => point.connectionId))) {
      const connection = await ctx.db.get("connections", connectionId);
      labels.set(connectionId, connection ? `${connection.service} "${connection.name}"` : "removed connection");
    }
    const prompt = insightPrompt(project.name, summarize(points, (id) => labels.get(id) ?? "connection"));
    return {
      userId: membership.userId,
      aiKeyId: aiKey._id,
      provider: aiKey.provider,
      encryptedKey: aiKey.encryptedKey,
      ...(aiKey.secretVersion !== undefined ? { secretVersion: aiKey.secretVersion } : {}),
      rootSalt: await readRootSalt(ctx.db),
      prompt,
    };
  },
});

/** Stores a generated insight and returns it as the dashboard sees it. */
export const saveInsight = internalMutation({
  args: {
    projectId: v.id("projects"),
    userId: v.id("users"),
    provider: aiProviderValidator,
    model: v.string(),
    text: v.string(),
  },
  returns: insightValidator,
  handler: async (ctx, insight) => {
    const createdAt = Date.now();
    const insightId = await ctx.db.insert("insights", { ...insight, createdAt });
    return { insightId, provider: insight.provider, model: insight.model, text: insight.text, createdAt };
  },
});

/**
 * Asks the caller's AI provider for observations on the project's recent
 * metrics (project members), stores them in insights and returns them.
 * NOT_FOUND without an AI key; DECRYPTION_FAILED if it does not decrypt;
 * PROVIDER_ERROR (safe message) if the provider fails; RATE_LIMITED past
 * the caller's hourly allowance. Every decryption attempt is audited.
 */
export const generateInsight = userAction({
  args: { projectId: v.id("projects") },
  returns: insightValidator,
  handler: async (ctx, { projectId }): Promise<Insight> => {
    const input = await ctx.runQuery(internal.ai.loadInsightInput, { projectId, userId: ctx.user?._id ?? null });
    await ctx.runMutation(internal.rateLimits.consume, { name: "aiInsight", key: input.userId });
    const audit = { actorId: input.userId, projectId, targetTable: "aiKeys", targetId: input.aiKeyId };

    let apiKey: string;
    try {
      const keyring = loadKeyring(input.rootSalt);
      apiKey = (await decryptAiKey(keyring, input.userId, input.encryptedKey, input.secretVersion)).plaintext;
    } catch (error) {
      const code = appErrorCode(error);
      await ctx.runMutation(internal.audit.record, {
        ...audit,
        action: "aiKey.decryption_failed",
        detail: code ?? "DECRYPTION_FAILED",
      });
      throw code ? error : appError("DECRYPTION_FAILED", "Your AI key could not be decrypted");
    }
    await ctx.runMutation(internal.audit.record, { ...audit, action: "aiKey.decrypted", detail: "insight" });

    let completion: { model: string; text: string };
    try {
      completion = await completeText(input.provider, apiKey, SYSTEM_PROMPT, input.prompt);
    } catch (error) {
      if (isProviderError(error)) throw providerAppError(error);
      throw error;
    }
    return await ctx.runMutation(internal.ai.saveInsight, {
      projectId,
      userId: input.userId,
      provider: input.provider,
      ...completion,
    });
  },
});

/**
 * Whether an AI key works, before the dashboard saves it with aiKeys.set:
 * one cheap provider call (GET /v1/models). The key is neither stored nor
 * logged. A refused key is { valid: false } with a safe reason. Rate
 * limited per user, so the deployment cannot be used to test keys in bulk.
 */
export const verifyKey = userAction({
  args: { provider: aiProviderValidator, apiKey: v.string() },
  returns: v.object({ valid: v.boolean(), error: v.optional(v.string()) }),
  handler: async (ctx, { provider, apiKey }) => {
    const key = apiKey.trim();
    if (!key || key.length > MAX_API_KEY_LENGTH) throw appError("INVALID_ARGUMENT", "Enter an API key");
    await ctx.runMutation(internal.rateLimits.consume, { name: "aiKeyCheck", key: ctx.identity.tokenIdentifier });
    try {
      await checkApiKey(provider, key);
      return { valid: true };
    } catch (error) {
      if (isProviderError(error)) return { valid: false, error: error.message };
      throw error;
    }
  },
});
