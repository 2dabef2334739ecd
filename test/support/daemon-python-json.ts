/**
 * Serialises like Python's `json.dumps(obj)` with default arguments — what CVAT signs and
 * what `requests.post(json=...)` sends: `", "` / `": "` separators, ensure_ascii (every
 * UTF-16 code unit above 0x7f as \uXXXX), keys in insertion order. Enough for webhook
 * payloads (strings, integers, booleans, null, arrays, objects).
 */
export function pythonJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('python json.dumps would write NaN/Infinity; CVAT sends allow_nan=False');
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${pythonJsonDumps(k)}: ${pythonJsonDumps(v)}`)
      .join(', ')}}`;
  }
  throw new Error(`cannot serialise ${typeof value}`);
}
