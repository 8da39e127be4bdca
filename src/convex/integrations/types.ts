/** What an integration declares; see docs/integrations.md for adding one. */

/** One credential field the dashboard asks for. */
export interface CredentialField {
  /** Key in the credentials object, e.g. "secretKey". */
  name: string;
  /** Label for the dashboard form. */
  label: string;
  /** Secret fields are shown only as masked hints; others are shown in full. */
  secret: boolean;
}

/** An integration Dashtray can sync metrics from. */
export interface Integration {
  /** Stable id stored in connections.service. */
  id: string;
  /** Display name. */
  name: string;
  /** Every field a connection of this service needs; no other field is accepted. */
  credentialFields: readonly CredentialField[];
}
