/**
 * Forwarding exports, for one release only: the OAuth functions moved to
 * oauth/ (issue 17), and calls made under their old paths `oauth:<name>`
 * must still land after the deploy: a flow's deletion (10 minutes) and a
 * revocation with its backstop (up to 15 minutes) scheduled before it, and
 * the internal calls of an action that started before it (a sync refreshing
 * a token, a finishOAuth, the callback). Each name is the same function
 * object as under its new path. Delete this file in the release after
 * (docs/architecture.md, "Deploying"); import from oauth/ meanwhile, never
 * from here.
 */
export { deleteExpiredFlow } from "./oauth/start";
export { lookupCallback, receiveCallback, recordCallbackFailure } from "./oauth/callback";
export { takeReceivedFlow } from "./oauth/finish";
export { claimRefresh, loadGrant, markNeedsReauth, releaseRefresh, writeGrant } from "./oauth/tokenStore";
export { finishRevocation, loadRevocation, revokeGrant } from "./oauth/revocation";
