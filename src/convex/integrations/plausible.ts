import type { Integration } from "./types";

/** Plausible Analytics: visitors and pageviews of one site. */
export const plausible: Integration = {
  id: "plausible",
  name: "Plausible",
  credentialFields: [
    { name: "apiKey", label: "API key", secret: true },
    { name: "siteId", label: "Site id (domain)", secret: false },
  ],
};
