import type { Integration } from "./types";

/** GitHub: stars, forks and open issues of one repository, read with a token. */
export const github: Integration = {
  id: "github",
  name: "GitHub",
  credentialFields: [
    { name: "token", label: "Personal access token", secret: true },
    { name: "repository", label: "Repository (owner/name)", secret: false },
  ],
};
