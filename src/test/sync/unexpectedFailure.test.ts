// An unexpected failure in integration code (not a ProviderError: e.g. a parse error whose message quotes the
// provider's answer, which can echo the credential) is stored on its connection with a fixed message, never
// stops the rest of a group, and reaches a manual sync's caller only as INTERNAL whose cause names the error's
// class, never its message.
import { ConvexError } from "convex/values";
import { describe, expect, test, vi } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import { github } from "../../convex/providers/integrations/github";
import { identity, newBackend } from "../helpers/convex";
import { seedConnection } from "../helpers/seed";
import { SECRETS, expectNoSecrets, useFakeProviders } from "../helpers/secrets";
import { GITHUB, auditOf, connection, metricsOf, setup } from "../helpers/syncRows";

const fake = useFakeProviders();

/** What integration code might throw after reading an answer that echoes the token. */
function parseErrorQuotingTheAnswer(): SyntaxError {
  return new SyntaxError(`Unexpected token in JSON at position 0: {"message":"Bad credentials ${SECRETS.githubToken}"}`);
}

describe("an unexpected error in integration code", () => {
  test("manual sync: INTERNAL with a fixed message, cause = the error's name only; stored as status error", async () => {
    const t = newBackend();
    const { connectionId, alice } = await setup(t);
    const fetchMetrics = vi.spyOn(github, "fetchMetrics").mockRejectedValueOnce(parseErrorQuotingTheAnswer());
    const logged = [vi.spyOn(console, "warn"), vi.spyOn(console, "error"), vi.spyOn(console, "log")];

    const error = await alice.action(api.connections.syncMetrics, { connectionId }).then(
      () => null,
      (caught: unknown) => caught,
    );

    expect(fetchMetrics).toHaveBeenCalledTimes(1);
    expect(error).toBeInstanceOf(ConvexError);
    const data = (error as ConvexError<{ code: string; message: string }>).data;
    expect(data).toEqual({ code: "INTERNAL", message: "GitHub sync failed unexpectedly" });
    const cause = (error as Error).cause;
    expect(cause).toBeInstanceOf(Error);
    expect((cause as Error).message).toBe("SyntaxError");
    expect(String((cause as Error).stack)).not.toMatch(/Bad credentials|Unexpected token/);
    expectNoSecrets(error);
    expectNoSecrets(String((error as Error).stack));
    // The outcome was stored before the error was thrown; the server log names the class only.
    const row = await connection(t, connectionId);
    expect(row).toMatchObject({ status: "error", lastError: "GitHub sync failed unexpectedly", syncFailures: 1 });
    const lines = logged.flatMap((spy) => spy.mock.calls.map((call) => call.map(String).join(" ")));
    expect(lines).toContain(`sync of connection ${connectionId} failed: internal:SyntaxError (1 in a row)`);
    for (const line of lines) expect(line).not.toMatch(/Bad credentials|Unexpected token/);
    expectNoSecrets(lines);
    expect((await auditOf(t, connectionId)).map((entry) => entry.action)).toEqual(["connection.credentials_decrypted"]);
  });

  test("cron group of 3: the failing connection is stored as error with the fixed message; the other 2 sync", async () => {
    const t = newBackend();
    const { projectId, connectionId } = await setup(t);
    const others = [await seedConnection(t, projectId, "github", GITHUB), await seedConnection(t, projectId, "github", GITHUB)];
    vi.spyOn(github, "fetchMetrics").mockRejectedValueOnce(parseErrorQuotingTheAnswer());

    const results = await t.action(internal.sync.run.syncGroup, { connectionIds: [connectionId, ...others] });

    expect(results).toEqual([
      { status: "error", metricsStored: 0, error: "GitHub sync failed unexpectedly" },
      { status: "active", metricsStored: 4 },
      { status: "active", metricsStored: 4 },
    ]);
    expectNoSecrets(results);
    expect(fake().requests).toHaveLength(2);
    for (const id of others) expect(await metricsOf(t, id)).toHaveLength(4);
    expect(await metricsOf(t, connectionId)).toEqual([]);
  });

  test("an OAuth connection whose token refresh fails unexpectedly is stored as error; the group's other connection syncs", async () => {
    const t = newBackend();
    const { projectId, connectionId: githubId } = await setup(t);
    const owner = t.withIdentity(identity("bob"));
    // Connect Google Analytics through the real flow, with tokens that the next sync must refresh.
    fake().oauth.accessTokenLifetimeSeconds = 60;
    const { authorizationUrl } = await owner.mutation(api.connections.startOAuth, {
      projectId,
      service: "google_analytics",
      settings: { propertyId: SECRETS.gaPropertyId },
    });
    const response = await t.fetch(fake().oauth.authorize(authorizationUrl).callbackPath);
    const flow = new URL(response.headers.get("Location") ?? "").searchParams.get("flow") ?? "";
    const { connectionId: gaId } = await owner.action(api.connections.finishOAuth, { flow });
    // Sealing the refreshed tokens fails with an error that is not a ProviderError.
    const encrypt = vi.spyOn(crypto.subtle, "encrypt").mockRejectedValueOnce(new TypeError(`cannot seal ${fake().oauth.issued.join(" ")}`));

    const results = await t.action(internal.sync.run.syncGroup, { connectionIds: [gaId, githubId] });

    expect(results).toEqual([
      { status: "error", metricsStored: 0, error: "Google Analytics sync failed unexpectedly" },
      { status: "active", metricsStored: 4 },
    ]);
    expect(encrypt).toHaveBeenCalled();
    expect(fake().requests.filter((request) => request.route === "google.token")).toHaveLength(2); // the code exchange, the refresh
    expectNoSecrets(results, fake().oauth.issued);
    expect((await connection(t, gaId)).lastError).toBe("Google Analytics sync failed unexpectedly");
    expect(await metricsOf(t, githubId)).toHaveLength(4);
  });
});
