/** What an integration declares; see docs/integrations.md for adding one. */
import type { Credentials } from "../validators";

/** One credential field the dashboard asks for. */
export interface CredentialField {
  /** Key in the credentials object, e.g. "secretKey". */
  name: string;
  /** Label for the dashboard form. */
  label: string;
  /** Secret fields are shown only as masked hints; others are shown in full. */
  secret: boolean;
  /** What a valid value looks like, checked when credentials are written; `description` completes "must be …". */
  format?: { pattern: RegExp; description: string };
}

/** One value read from a service, e.g. { name: "stars", value: 1234 }. */
export interface MetricPoint {
  name: string;
  value: number;
}

/** The time window a sync reads, in ms since the epoch. Gauges (balances, stars) ignore it. */
export interface MetricsRange {
  from: number;
  to: number;
}

/** An integration Dashtray can sync metrics from. */
export interface Integration {
  /** Stable id stored in connections.service. */
  id: string;
  /** Display name. */
  name: string;
  /** Every field a connection of this service needs; no other field is accepted. */
  credentialFields: readonly CredentialField[];
  /**
   * Reads the current metrics from the service's real API with `fetch`
   * (through http.ts requestJson). Throws only ProviderError. Must not log
   * or return any credential.
   */
  fetchMetrics(credentials: Credentials, range: MetricsRange): Promise<MetricPoint[]>;
}
