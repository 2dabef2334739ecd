/**
 * CVAT's OpenAPI schema (cvat/schema.yml of ../shared/cvat) as ajv validators: the
 * emulator's answers are checked against the schema of the CVAT version it claims.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsImport from 'ajv-formats';
import { parse } from 'yaml';

// ajv-formats is CommonJS: its default export arrives as the function or as `{ default }` depending on the loader.
type AddFormats = (ajv: Ajv) => Ajv;
const formatsModule = addFormatsImport as unknown as AddFormats & { default?: AddFormats };
export const addFormats: AddFormats = formatsModule.default ?? formatsModule;

/** OpenAPI 3.0 → JSON Schema: `nullable` → anyOf null, drop `example`, close objects so an invented field fails. */
export function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const src = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(src)) {
    if (key === 'nullable' || key === 'example') continue;
    if (key === 'properties' && value && typeof value === 'object') {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, schema]) => [name, toJsonSchema(schema)]));
    } else out[key] = toJsonSchema(value);
  }
  if (out['properties'] && out['additionalProperties'] === undefined) out['additionalProperties'] = false;
  return src['nullable'] === true ? { anyOf: [out, { type: 'null' }] } : out;
}

export interface CvatSchemas {
  /** The validator of `#/components/schemas/<name>`. */
  schema: (name: string) => ValidateFunction;
  /** A schema of the test's own that may `$ref` `<id>#/components/schemas/…`. */
  compile: (schema: object) => ValidateFunction;
}

/** Loads `schemaFile` (a CVAT schema.yml) under the id `id`. */
export function cvatSchemas(schemaFile: string, id: string): CvatSchemas {
  const doc = parse(readFileSync(schemaFile, 'utf8')) as { components: { schemas: Record<string, unknown> } };
  const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
  ajv.addSchema({ $id: id, components: { schemas: toJsonSchema(doc.components.schemas) } });
  return {
    schema: (name) => {
      const fn = ajv.getSchema(`${id}#/components/schemas/${name}`);
      if (!fn) throw new Error(`no schema ${name} in ${schemaFile}`);
      return fn;
    },
    compile: (schema) => ajv.compile(schema),
  };
}

/** Throws with the first errors (and `label`) when `data` does not fit. */
export function expectValid(validate: ValidateFunction, data: unknown, label: string): void {
  if (!validate(data)) throw new Error(`${label}: ${JSON.stringify(validate.errors?.slice(0, 5), null, 1)}`);
}
