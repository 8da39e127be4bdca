// The root oauth.ts forwards every internal function of the old single-file
// oauth.ts for one release (docs/architecture.md, "Deploying"): each old
// path must be the very function object of its new home, so a call
// scheduled or made under `oauth:<name>` before the deploy runs today's code.
import { expect, test } from "vitest";
import * as forwarding from "../../convex/oauth";
import * as callback from "../../convex/oauth/callback";
import * as finish from "../../convex/oauth/finish";
import * as revocation from "../../convex/oauth/revocation";
import * as start from "../../convex/oauth/start";
import * as tokenStore from "../../convex/oauth/tokenStore";
import architectureDoc from "../../../docs/architecture.md?raw";

test("oauth.ts forwards all 13 old internal paths to the same function objects in oauth/, each listed in docs/architecture.md", () => {
  const homes = { start, callback, finish, tokenStore, revocation };
  const expected: Record<string, unknown> = {};
  for (const name of Object.keys(forwarding)) {
    const home = Object.values(homes).find((module) => name in module);
    expected[name] = home ? (home as Record<string, unknown>)[name] : undefined;
  }
  expect(Object.keys(forwarding).sort()).toEqual(
    [
      "claimRefresh",
      "deleteExpiredFlow",
      "finishRevocation",
      "loadGrant",
      "loadRevocation",
      "markNeedsReauth",
      "receiveCallback",
      "recordCallbackFailure",
      "releaseRefresh",
      "revokeGrant",
      "takeReceivedFlow",
      "writeGrant",
      "lookupCallback",
    ].sort(),
  );
  const deploying = architectureDoc.slice(architectureDoc.indexOf("## Deploying"));
  for (const [name, fn] of Object.entries(forwarding)) {
    expect(fn, name).toBeDefined();
    expect(fn, name).toBe(expected[name]);
    const home = Object.entries(homes).find(([, module]) => name in module)![0];
    expect(deploying, `docs/architecture.md lists oauth:${name}`).toMatch(
      new RegExp(`\\| \`oauth:${name}\` \\| \`oauth/${home}:${name}\` \\|`),
    );
  }
});
