import { baseUrl, credentialValue, expectNumber, expectObject, requestJson } from "../transport";
import { ProviderError } from "../errors";
import type { Integration } from "./types";

const NAME = "GitHub";
const DEFAULT_BASE_URL = "https://api.github.com";
const API_VERSION = "2022-11-28";
/**
 * A GitHub token: a classic or app token (ghp_, gho_, ghu_, ghs_, ghr_ and 36
 * letters or digits), a fine-grained token (github_pat_ and 80 or more
 * characters), or a token from before prefixes (40 hex digits).
 */
const TOKEN_PATTERN = /^(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{80,}|[0-9a-f]{40})$/;
/** owner/name, each of letters, digits, "-", "_" and "."; neither "." nor ".." alone (path traversal). */
const REPOSITORY_PATTERN = /^(?!\.{1,2}\/)([A-Za-z0-9_.-]+)\/(?!\.{1,2}$)([A-Za-z0-9_.-]+)$/;
/** Longest 403 body read for the words "secondary rate limit" (GitHub's is about 300 bytes); a longer one is not read. */
const MAX_ERROR_BYTES = 4096;

/**
 * A 403 whose body says it is a secondary rate limit is rate_limited, not a
 * refused token (a 403 with Retry-After or `x-ratelimit-remaining: 0` is
 * rate_limited already: transport.ts rateLimitOf). Nothing of the body is
 * kept but that answer.
 */
function secondaryRateLimit(status: number, text: string | null): "rate_limited" | null {
  return status === 403 && text !== null && /secondary rate limit/i.test(text) ? "rate_limited" : null;
}

/** GitHub: stars, forks, open issues and watchers of one repository (GET /repos/{owner}/{repo}). */
export const github: Integration = {
  id: "github",
  name: NAME,
  credentialFields: [
    {
      name: "token",
      label: "Personal access token",
      secret: true,
      format: {
        pattern: TOKEN_PATTERN,
        description: "a GitHub token: ghp_ (or gho_, ghu_, ghs_, ghr_) and 36 letters or digits, github_pat_ and at least 80 characters, or 40 hex digits",
      },
    },
    {
      name: "repository",
      label: "Repository (owner/name)",
      secret: false,
      format: { pattern: REPOSITORY_PATTERN, description: "owner/name, e.g. octocat/hello-world" },
    },
  ],

  async fetchMetrics(credentials) {
    const token = credentialValue(NAME, credentials, "token");
    const match = REPOSITORY_PATTERN.exec(credentialValue(NAME, credentials, "repository"));
    const [owner, repo] = [match?.[1], match?.[2]];
    // Checked on write too; rows written before that check are refused here, never put in the path.
    if (!owner || !repo) throw new ProviderError(NAME, "invalid_request");
    const url = `${baseUrl("GITHUB_API_BASE_URL", DEFAULT_BASE_URL)}/repos/${owner}/${repo}`;
    const repository = expectObject(
      NAME,
      await requestJson(NAME, url, {
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: "application/vnd.github+json",
          "X-GitHub-Api-Version": API_VERSION,
          "User-Agent": "Dashtray",
        },
      }, { errorKindFromBody: secondaryRateLimit, maxErrorBytes: MAX_ERROR_BYTES }),
    );
    return [
      { name: "stars", value: expectNumber(NAME, repository.stargazers_count) },
      { name: "forks", value: expectNumber(NAME, repository.forks_count) },
      // GitHub counts open pull requests as issues here.
      { name: "open_issues", value: expectNumber(NAME, repository.open_issues_count) },
      ...(typeof repository.subscribers_count === "number"
        ? [{ name: "watchers", value: expectNumber(NAME, repository.subscribers_count) }]
        : []),
    ];
  },
};
