/**
 * Process-wide registry of secret values (tokens, passwords, webhook secrets).
 * Every sink that writes text the user can see (logger, error messages, --json,
 * /status) runs it through `redactSecrets`, so a secret registered once can never
 * leak even if some code path formats a header or URL by mistake.
 */
const secrets = new Set<string>();
const REPLACEMENT = '[REDACTED]';

export function registerSecret(value: string | undefined): void {
  // Very short values would redact ordinary words; real credentials are longer.
  if (value && value.length >= 4) secrets.add(value);
}

export function registerBasicCredentials(username: string, password: string): void {
  registerSecret(password);
  secrets.add(Buffer.from(`${username}:${password}`).toString('base64'));
}

export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REPLACEMENT);
  }
  return out;
}

/** For tests: forget every registered secret. */
export function clearSecretsForTests(): void {
  secrets.clear();
}
