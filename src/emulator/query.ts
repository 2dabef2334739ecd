/**
 * List endpoints the CVAT way (cvat/apps/engine/pagination.py, filters.py): simple equality
 * filters, `search`, `sort` (comma list, `-` prefix), `filter` (JSON Logic: and, or, !, ==,
 * !=, <, <=, >, >=, in, var) and page/page_size pagination (`page_size=all`, no maximum) with
 * absolute `next`/`previous` links.
 */
import { HttpError } from './http.js';

export type FieldType = 'number' | 'string' | 'date';

export interface ListField<T> {
  get: (item: T) => unknown;
  type: FieldType;
}

export interface ListSpec<T> {
  /** Fields usable in `filter` and `sort`. */
  fields: Record<string, ListField<T>>;
  /** Query parameters that are simple equality filters on the field of the same name. */
  simpleFilters: string[];
  /** Text searched (case-insensitively) by `search=`. */
  search: (item: T) => Array<string | null | undefined>;
}

export interface Page<R> {
  count: number;
  next: string | null;
  previous: string | null;
  results: R[];
}

/** Python-like str() of a filter/ordering value; objects keep JS's default String() form, as before. */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return value.toString();
  return String(value);
}

function normalize(value: unknown, type: FieldType): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'date') {
    const ms = typeof value === 'number' ? value : Date.parse(asText(value));
    return Number.isNaN(ms) ? asText(value) : ms;
  }
  if (type === 'number') {
    const n = typeof value === 'number' ? value : Number(value);
    return Number.isNaN(n) ? asText(value) : n;
  }
  return asText(value);
}

type Rule = unknown;
interface FieldValue<T> {
  __field: ListField<T>;
  value: unknown;
}

function evaluate<T>(rule: Rule, item: T, spec: ListSpec<T>): unknown {
  if (rule === null || typeof rule !== 'object') return rule;
  if (Array.isArray(rule)) return rule.map((r) => evaluate(r, item, spec));
  const entries = Object.entries(rule as Record<string, unknown>);
  if (entries.length !== 1) throw new HttpError(400, ['filter: a rule must have exactly one operator']);
  const [op, rawArgs] = entries[0] as [string, unknown];
  const args = Array.isArray(rawArgs) ? rawArgs : [rawArgs];
  if (op === 'var') {
    const name = String(args[0]);
    const field = spec.fields[name];
    if (!field) throw new HttpError(400, [`filter: "${name}" is not a valid filter field`]);
    const result: FieldValue<T> = { __field: field, value: normalize(field.get(item), field.type) };
    return result;
  }
  const values = args.map((a) => evaluate(a, item, spec));
  const isField = (v: unknown): v is FieldValue<T> => typeof v === 'object' && v !== null && '__field' in v;
  const fieldOf = values.find(isField);
  const plain = (v: unknown): unknown => (isField(v) ? v.value : fieldOf && !Array.isArray(v) ? normalize(v, fieldOf.__field.type) : v);
  const [a, b] = [plain(values[0]), plain(values[1])];
  const cmp = (x: unknown, y: unknown): number | null => {
    if (x === null || y === null || x === undefined || y === undefined) return null;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    const sx = asText(x);
    const sy = asText(y);
    return sx < sy ? -1 : sx > sy ? 1 : 0;
  };
  switch (op) {
    case 'and':
      return values.every((v) => Boolean(plain(v)));
    case 'or':
      return values.some((v) => Boolean(plain(v)));
    case '!':
      return !plain(values[0]);
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const c = cmp(a, b);
      if (c === null) return false;
      return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
    }
    case 'in': {
      const list = values[1];
      if (Array.isArray(list)) return list.map((v) => plain(v)).includes(a);
      return typeof b === 'string' && typeof a === 'string' ? b.includes(a) : false;
    }
    default:
      throw new HttpError(400, [`filter: the operator "${op}" is not supported`]);
  }
}

export function applyListQuery<T>(items: readonly T[], query: URLSearchParams, spec: ListSpec<T>): T[] {
  let out = [...items];
  for (const name of spec.simpleFilters) {
    const wanted = query.get(name);
    const field = spec.fields[name];
    if (wanted === null || wanted === '' || !field) continue; // django-filter ignores empty values
    out = out.filter((item) => {
      const v = field.get(item);
      return v === null || v === undefined ? wanted === 'null' : asText(v) === wanted;
    });
  }
  const search = query.get('search');
  if (search) {
    const needle = search.toLowerCase();
    out = out.filter((item) => spec.search(item).some((s) => s?.toLowerCase().includes(needle)));
  }
  const filter = query.get('filter');
  if (filter) {
    let rule: unknown;
    try {
      rule = JSON.parse(filter);
    } catch {
      throw new HttpError(400, ['filter: the filter is not a valid JSON']);
    }
    out = out.filter((item) => Boolean(evaluate(rule, item, spec)));
  }
  const ordering = (query.get('sort') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s && spec.fields[s.replace(/^-/, '')]);
  const keys = [...ordering, '-id'];
  const compare = (x: T, y: T): number => {
    for (const key of keys) {
      const desc = key.startsWith('-');
      const field = spec.fields[key.replace(/^-/, '')];
      if (!field) continue;
      const a = normalize(field.get(x), field.type);
      const b = normalize(field.get(y), field.type);
      if (a === b) continue;
      if (a === null) return desc ? 1 : -1;
      if (b === null) return desc ? -1 : 1;
      const c = typeof a === 'number' && typeof b === 'number' ? a - b : asText(a) < asText(b) ? -1 : 1;
      return desc ? -c : c;
    }
    return 0;
  };
  return out.sort(compare);
}

/** DRF PageNumberPagination with CVAT's `page_size=all`. `requestUrl` is the absolute URL of the request. */
export function paginate<T, R>(items: readonly T[], query: URLSearchParams, requestUrl: URL, map: (item: T) => R): Page<R> {
  const rawSize = query.get('page_size');
  let size = 10;
  if (rawSize === 'all') size = Math.max(1, items.length);
  else if (rawSize !== null && /^\d+$/.test(rawSize) && Number(rawSize) > 0) size = Number(rawSize);
  const rawPage = query.get('page') ?? '1';
  const page = rawPage === 'last' ? Math.max(1, Math.ceil(items.length / size)) : Number(rawPage);
  const pages = Math.max(1, Math.ceil(items.length / size));
  if (!Number.isInteger(page) || page < 1 || page > pages) throw new HttpError(404, { detail: 'Invalid page.' });
  const link = (n: number): string => {
    const url = new URL(requestUrl);
    if (n === 1) url.searchParams.delete('page');
    else url.searchParams.set('page', String(n));
    return url.toString();
  };
  return {
    count: items.length,
    next: page < pages ? link(page + 1) : null,
    previous: page > 1 ? link(page - 1) : null,
    results: items.slice((page - 1) * size, page * size).map(map),
  };
}
