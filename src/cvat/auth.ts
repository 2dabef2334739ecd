/**
 * CVAT credentials and the Authorization header each kind produces (cvat-facts §6):
 * personal access token → Bearer (2.48+), legacy API key → Token, username/password → Basic.
 * Every secret is registered for redaction the moment it is created.
 */
import { registerBasicCredentials, registerSecret } from '../secrets.js';

export type CvatCredentials = { kind: 'token'; token: string } | { kind: 'apiKey'; key: string } | { kind: 'basic'; username: string; password: string };

export function credentialsHeader(credentials: CvatCredentials | undefined): string | undefined {
  if (!credentials) return undefined;
  switch (credentials.kind) {
    case 'token':
      registerSecret(credentials.token);
      return `Bearer ${credentials.token}`;
    case 'apiKey':
      registerSecret(credentials.key);
      return `Token ${credentials.key}`;
    case 'basic':
      registerBasicCredentials(credentials.username, credentials.password);
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  }
}

/** What to tell the admin when CVAT answers 401 for these credentials. */
export function describeCredentialProblem(credentials: CvatCredentials | undefined): string {
  if (!credentials) {
    return 'no credentials were given: set CVAT_ACCESS_TOKEN (or --token-file), CVAT_API_KEY, or CVAT_USERNAME and CVAT_PASSWORD';
  }
  switch (credentials.kind) {
    case 'token':
      return 'the personal access token was refused (expired, revoked, unused for 180 days, or CVAT older than 2.48 which has no access tokens): create a new one under your CVAT profile and set CVAT_ACCESS_TOKEN or --token-file';
    case 'apiKey':
      return 'the API key (Authorization: Token) was refused: log in again to get a new key, or use a personal access token';
    case 'basic':
      return `CVAT refused the password of user "${credentials.username}" (or basic auth is disabled, or the e-mail is unverified): check CVAT_USERNAME and CVAT_PASSWORD`;
  }
}

/**
 * Whether CVAT accepts the credentials, as last seen: `accepted` is undefined until an
 * authenticated request got an answer, false after a 401, true after a 2xx on an
 * endpoint that needs them (/api/server/about does not). `detail` says why, for
 * /status and /readyz; it never holds the secret.
 */
export interface CredentialsState {
  accepted: boolean | undefined;
  detail: string;
  /** Unix ms of the last change. */
  since: number;
}
