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
 * Whether a connection other than `exceptId` holds a grant (stored
 * ciphertext) that may be of the account `accountHash` of `service`: one
 * with the same hash, or one whose account is unknown; with an unknown
 * `accountHash`, any other grant of the service.
 */
export async function accountMayBeHeld(
  db: QueryCtx["db"],
  service: string,
  accountHash: string | undefined,
  exceptId: Id<"connections"> | null,
): Promise<boolean> {
  const ranges = accountHash === undefined ? [null] : [accountHash, undefined];
  for (const hash of ranges) {
    const holders =
      hash === null
        ? db.query("connections").withIndex("by_service_and_oauthAccountHash", (q) => q.eq("service", service))
        : db
            .query("connections")
            .withIndex("by_service_and_oauthAccountHash", (q) => q.eq("service", service).eq("oauthAccountHash", hash));
    // Rows without ciphertext (a connection whose first sign-in is still being stored) hold no grant: skipped.
    for await (const holder of holders) {
      if (holder._id !== exceptId && holder.encryptedCredentials !== undefined) return true;
    }
  }
  return false;
}
