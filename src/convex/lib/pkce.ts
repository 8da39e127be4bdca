/**
 * PKCE (RFC 7636) for OAuth authorization-code flows: a random code verifier
 * and its S256 challenge. The verifier stays on the server; only the
 * challenge goes into the authorization URL.
 */
import { base64UrlEncode, utf8Encode } from "./encoding";
import { randomToken } from "./hash";

/** Random bytes of a code verifier: 32 bytes give the 43 characters RFC 7636 recommends. */
export const CODE_VERIFIER_BYTES = 32;

/** A fresh code verifier: 43 unreserved characters (base64url of 32 CSPRNG bytes). */
export function newCodeVerifier(): string {
  return randomToken(CODE_VERIFIER_BYTES);
}

/** The S256 code challenge of `verifier`: base64url(SHA-256(ASCII(verifier))), unpadded. */
export async function codeChallengeS256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8Encode(verifier));
  return base64UrlEncode(new Uint8Array(digest));
}
