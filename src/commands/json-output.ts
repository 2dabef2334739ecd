/**
 * The `--json` output of every command: one documented, versioned shape per command,
 * described by `schemas/<command>.schema.json` (tested with ajv against real outputs).
 * Bump a command's version when a field is removed, renamed or changes meaning; a
 * field added keeps it (and is added to the schema).
 */
import { redactSecrets } from '../secrets.js';

export const JSON_SCHEMA_VERSIONS = {
  warm: 1,
  check: 1,
  doctor: 2,
  restore: 1,
  backup: 1,
  'backup-list': 1,
  'backup-verify': 1,
  'backup-restore': 1,
  impact: 1,
} as const;
export type JsonCommand = keyof typeof JSON_SCHEMA_VERSIONS;

/** Writes `{ schemaVersion, command, ...body }` on stdout, pretty-printed, with any registered secret redacted. */
export function writeCommandJson(stream: NodeJS.WritableStream, command: JsonCommand, body: object): void {
  const output = { schemaVersion: JSON_SCHEMA_VERSIONS[command], command, ...body };
  stream.write(`${redactSecrets(JSON.stringify(output, null, 2))}\n`);
}
