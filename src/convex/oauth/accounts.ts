/**
 * Which Google account an OAuth grant belongs to, so that revoking one
 * grant never ends another connection's. Google keeps one authorization per
 * (Google account, OAuth client): revoking any token of it ends every token
 * that account gave this deployment's client, in every connection and every
 * project. So a grant is revoked (connection or project removed, reconnected
 * with another account, a finishOAuth that failed after the exchange) only
 * when no connection that still holds a grant may be of the same account.
 *
 * A connection stores only a keyed hash of its account (oauthAccountHash,
 * storedSecrets/encryption.ts oauthAccountHash), never the account id.
 * Grants stored before the hash was recorded have none: their account is
 * unknown, so it "might be shared" with any other grant of the same
 * service. The safe default is to keep a grant whenever that is possible:
 * a grant left alive at Google costs nothing here (its ciphertext is
 * deleted, nobody here can use it, and the user can end it in their Google
 * account's settings), while revoking a shared one silently breaks another
 * connection until someone reconnects it.
 */
import type { Id } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";

/**
 * How long a connection row without a grant yet counts as holding its
 * account: finishOAuth inserts the row (with the account's hash) right
 * after the code exchange and stores the grant moments later; a row still
 * without one after this long belongs to a sign-in that failed, so it holds
 * nothing.
 */
export const PENDING_GRANT_MS = 10 * 60_000;

/**
 * Whether a connection other than `exceptId` holds a grant that may be of
 * the account `accountHash` of `service`: one with the same hash, or one
 * whose account is unknown; with an unknown `accountHash`, any other grant
 * of the service. A row of the same known account still being connected
 * (no ciphertext yet, created within PENDING_GRANT_MS) counts too, so a
 * revocation never ends the grant a finishOAuth is about to store.
 */
export async function accountMayBeHeld(
  db: QueryCtx["db"],
  service: string,
  accountHash: string | undefined,
  exceptId: Id<"connections"> | null,
  now: number = Date.now(),
): Promise<boolean> {
  const ranges = accountHash === undefined ? [null] : [accountHash, undefined];
  for (const hash of ranges) {
    const holders =
      hash === null
        ? db.query("connections").withIndex("by_service_and_oauthAccountHash", (q) => q.eq("service", service))
        : db
            .query("connections")
            .withIndex("by_service_and_oauthAccountHash", (q) => q.eq("service", service).eq("oauthAccountHash", hash));
    for await (const holder of holders) {
      if (holder._id === exceptId) continue;
      if (holder.encryptedCredentials !== undefined) return true;
      const beingConnected = hash !== null && hash !== undefined && holder.createdAt > now - PENDING_GRANT_MS;
      if (beingConnected) return true;
    }
  }
  return false;
}
