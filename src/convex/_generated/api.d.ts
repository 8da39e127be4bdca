/* eslint-disable */
/**
 * Generated `api` utility.
 *
 * THIS CODE IS AUTOMATICALLY GENERATED.
 *
 * To regenerate, run `npx convex dev`.
 * @module
 */

import type * as access_actionAccess from "../access/actionAccess.js";
import type * as access_actionBuilders from "../access/actionBuilders.js";
import type * as access_builders from "../access/builders.js";
import type * as access_caps from "../access/caps.js";
import type * as access_identity from "../access/identity.js";
import type * as access_input from "../access/input.js";
import type * as access_rateLimits from "../access/rateLimits.js";
import type * as access_roles from "../access/roles.js";
import type * as ai from "../ai.js";
import type * as aiKeys from "../aiKeys.js";
import type * as apiKeys from "../apiKeys.js";
import type * as audit_trail from "../audit/trail.js";
import type * as auditLog from "../auditLog.js";
import type * as connections from "../connections.js";
import type * as crons from "../crons.js";
import type * as env from "../env.js";
import type * as errors from "../errors.js";
import type * as http from "../http.js";
import type * as insights from "../insights.js";
import type * as invitations from "../invitations.js";
import type * as jobs_batches from "../jobs/batches.js";
import type * as jobs_connectionHistory from "../jobs/connectionHistory.js";
import type * as jobs_projectRemoval from "../jobs/projectRemoval.js";
import type * as jobs_retention from "../jobs/retention.js";
import type * as keyRotation from "../keyRotation.js";
import type * as lib_cipher from "../lib/cipher.js";
import type * as lib_encoding from "../lib/encoding.js";
import type * as lib_envNumber from "../lib/envNumber.js";
import type * as lib_errors from "../lib/errors.js";
import type * as lib_hash from "../lib/hash.js";
import type * as lib_kdf from "../lib/kdf.js";
import type * as lib_keyStrength from "../lib/keyStrength.js";
import type * as lib_keyring from "../lib/keyring.js";
import type * as lib_mask from "../lib/mask.js";
import type * as lib_pkce from "../lib/pkce.js";
import type * as metricHistory_backfill from "../metricHistory/backfill.js";
import type * as metricHistory_rollups from "../metricHistory/rollups.js";
import type * as metricRollups from "../metricRollups.js";
import type * as metrics from "../metrics.js";
import type * as metricsSync from "../metricsSync.js";
import type * as oauth from "../oauth.js";
import type * as oauth_accounts from "../oauth/accounts.js";
import type * as oauth_callback from "../oauth/callback.js";
import type * as oauth_finish from "../oauth/finish.js";
import type * as oauth_grants from "../oauth/grants.js";
import type * as oauth_provider from "../oauth/provider.js";
import type * as oauth_refresh from "../oauth/refresh.js";
import type * as oauth_revocation from "../oauth/revocation.js";
import type * as oauth_start from "../oauth/start.js";
import type * as oauth_tokenStore from "../oauth/tokenStore.js";
import type * as projectRemoval from "../projectRemoval.js";
import type * as projects from "../projects.js";
import type * as providers_ai_anthropic from "../providers/ai/anthropic.js";
import type * as providers_ai_openai from "../providers/ai/openai.js";
import type * as providers_ai_registry from "../providers/ai/registry.js";
import type * as providers_ai_types from "../providers/ai/types.js";
import type * as providers_errors from "../providers/errors.js";
import type * as providers_integrations_github from "../providers/integrations/github.js";
import type * as providers_integrations_googleAnalytics from "../providers/integrations/googleAnalytics.js";
import type * as providers_integrations_oauthClient from "../providers/integrations/oauthClient.js";
import type * as providers_integrations_plausible from "../providers/integrations/plausible.js";
import type * as providers_integrations_registry from "../providers/integrations/registry.js";
import type * as providers_integrations_stripe from "../providers/integrations/stripe.js";
import type * as providers_integrations_types from "../providers/integrations/types.js";
import type * as providers_transport from "../providers/transport.js";
import type * as rateLimits from "../rateLimits.js";
import type * as reencryption_batchReader from "../reencryption/batchReader.js";
import type * as reencryption_job from "../reencryption/job.js";
import type * as reencryption_rewrite from "../reencryption/rewrite.js";
import type * as reencryption_rows from "../reencryption/rows.js";
import type * as reencryption_status from "../reencryption/status.js";
import type * as reencryption_validators from "../reencryption/validators.js";
import type * as retention from "../retention.js";
import type * as storedSecrets_encryption from "../storedSecrets/encryption.js";
import type * as storedSecrets_registry from "../storedSecrets/registry.js";
import type * as sync_firstSync from "../sync/firstSync.js";
import type * as sync_outcomes from "../sync/outcomes.js";
import type * as sync_pause from "../sync/pause.js";
import type * as sync_policy from "../sync/policy.js";
import type * as sync_run from "../sync/run.js";
import type * as sync_schedule from "../sync/schedule.js";
import type * as upgrade from "../upgrade.js";
import type * as upgrade_defaults from "../upgrade/defaults.js";
import type * as users from "../users.js";
import type * as validators from "../validators.js";

import type {
  ApiFromModules,
  FilterApi,
  FunctionReference,
} from "convex/server";

declare const fullApi: ApiFromModules<{
  "access/actionAccess": typeof access_actionAccess;
  "access/actionBuilders": typeof access_actionBuilders;
  "access/builders": typeof access_builders;
  "access/caps": typeof access_caps;
  "access/identity": typeof access_identity;
  "access/input": typeof access_input;
  "access/rateLimits": typeof access_rateLimits;
  "access/roles": typeof access_roles;
  ai: typeof ai;
  aiKeys: typeof aiKeys;
  apiKeys: typeof apiKeys;
  "audit/trail": typeof audit_trail;
  auditLog: typeof auditLog;
  connections: typeof connections;
  crons: typeof crons;
  env: typeof env;
  errors: typeof errors;
  http: typeof http;
  insights: typeof insights;
  invitations: typeof invitations;
  "jobs/batches": typeof jobs_batches;
  "jobs/connectionHistory": typeof jobs_connectionHistory;
  "jobs/projectRemoval": typeof jobs_projectRemoval;
  "jobs/retention": typeof jobs_retention;
  keyRotation: typeof keyRotation;
  "lib/cipher": typeof lib_cipher;
  "lib/encoding": typeof lib_encoding;
  "lib/envNumber": typeof lib_envNumber;
  "lib/errors": typeof lib_errors;
  "lib/hash": typeof lib_hash;
  "lib/kdf": typeof lib_kdf;
  "lib/keyStrength": typeof lib_keyStrength;
  "lib/keyring": typeof lib_keyring;
  "lib/mask": typeof lib_mask;
  "lib/pkce": typeof lib_pkce;
  "metricHistory/backfill": typeof metricHistory_backfill;
  "metricHistory/rollups": typeof metricHistory_rollups;
  metricRollups: typeof metricRollups;
  metrics: typeof metrics;
  metricsSync: typeof metricsSync;
  oauth: typeof oauth;
  "oauth/accounts": typeof oauth_accounts;
  "oauth/callback": typeof oauth_callback;
  "oauth/finish": typeof oauth_finish;
  "oauth/grants": typeof oauth_grants;
  "oauth/provider": typeof oauth_provider;
  "oauth/refresh": typeof oauth_refresh;
  "oauth/revocation": typeof oauth_revocation;
  "oauth/start": typeof oauth_start;
  "oauth/tokenStore": typeof oauth_tokenStore;
  projectRemoval: typeof projectRemoval;
  projects: typeof projects;
  "providers/ai/anthropic": typeof providers_ai_anthropic;
  "providers/ai/openai": typeof providers_ai_openai;
  "providers/ai/registry": typeof providers_ai_registry;
  "providers/ai/types": typeof providers_ai_types;
  "providers/errors": typeof providers_errors;
  "providers/integrations/github": typeof providers_integrations_github;
  "providers/integrations/googleAnalytics": typeof providers_integrations_googleAnalytics;
  "providers/integrations/oauthClient": typeof providers_integrations_oauthClient;
  "providers/integrations/plausible": typeof providers_integrations_plausible;
  "providers/integrations/registry": typeof providers_integrations_registry;
  "providers/integrations/stripe": typeof providers_integrations_stripe;
  "providers/integrations/types": typeof providers_integrations_types;
  "providers/transport": typeof providers_transport;
  rateLimits: typeof rateLimits;
  "reencryption/batchReader": typeof reencryption_batchReader;
  "reencryption/job": typeof reencryption_job;
  "reencryption/rewrite": typeof reencryption_rewrite;
  "reencryption/rows": typeof reencryption_rows;
  "reencryption/status": typeof reencryption_status;
  "reencryption/validators": typeof reencryption_validators;
  retention: typeof retention;
  "storedSecrets/encryption": typeof storedSecrets_encryption;
  "storedSecrets/registry": typeof storedSecrets_registry;
  "sync/firstSync": typeof sync_firstSync;
  "sync/outcomes": typeof sync_outcomes;
  "sync/pause": typeof sync_pause;
  "sync/policy": typeof sync_policy;
  "sync/run": typeof sync_run;
  "sync/schedule": typeof sync_schedule;
  upgrade: typeof upgrade;
  "upgrade/defaults": typeof upgrade_defaults;
  users: typeof users;
  validators: typeof validators;
}>;

/**
 * A utility for referencing Convex functions in your app's public API.
 *
 * Usage:
 * ```js
 * const myFunctionReference = api.myModule.myFunction;
 * ```
 */
export declare const api: FilterApi<
  typeof fullApi,
  FunctionReference<any, "public">
>;

/**
 * A utility for referencing Convex functions in your app's internal API.
 *
 * Usage:
 * ```js
 * const myFunctionReference = internal.myModule.myFunction;
 * ```
 */
export declare const internal: FilterApi<
  typeof fullApi,
  FunctionReference<any, "internal">
>;

export declare const components: {};
