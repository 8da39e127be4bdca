import type { Integration } from "./types";

/** Stripe: account balance and revenue, read with a secret or restricted key. */
export const stripe: Integration = {
  id: "stripe",
  name: "Stripe",
  credentialFields: [{ name: "secretKey", label: "Secret key (sk_… or rk_…)", secret: true }],
};
