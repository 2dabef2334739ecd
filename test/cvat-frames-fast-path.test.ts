// Data meta's frames are kept as CVAT sent them where isPlainFrame vouches for them
// (src/cvat/shapes.ts): these tests hold that fast path to FrameMetaSchema's verdicts and
// to the output of the schema as it was before it (`z.array(FrameMetaSchema)`).
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DataMetaSchema, FrameMetaSchema, isPlainFrame, summarizeIssues } from '../src/cvat/shapes.js';

/** The definition before the fast path: every frame through FrameMetaSchema. */
const Reference = DataMetaSchema.extend({ frames: z.array(FrameMetaSchema).nullable().default([]) });

const meta = (frames: unknown): Record<string, unknown> => ({ size: 2, start_frame: 0, stop_frame: 1, frames });

// Values for each field, good and bad for one field or another.
const POOL: unknown[] = [
  undefined,
  null,
  0,
  -0,
  1,
  -1,
  1.5,
  1920,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  'images/a.jpg',
  '1920',
  true,
  false,
  [],
  {},
  [1],
];
/** Values FrameMetaSchema takes for each field (undefined: left out). */
const GOOD: Record<string, unknown[]> = {
  name: ['', 'images/a.jpg', 'd1/f0.jpg'],
  width: [undefined, 0, 1920, 1.5, -1],
  height: [undefined, 1080, -0],
  related_files: [undefined, 0, 3, Number.MAX_SAFE_INTEGER],
  has_related_context: [undefined, true, false],
};

/**
 * `count` frames from a fixed LCG (repeatable): each field a value it takes four times in
 * five, else anything from POOL; an unknown field now and then.
 */
function frames(count: number): unknown[] {
  let seed = 12345;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const out: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const frame: Record<string, unknown> = {};
    for (const [field, good] of Object.entries(GOOD)) {
      const value = next(5) < 4 ? good[next(good.length)] : POOL[next(POOL.length)];
      if (value !== undefined) frame[field] = value;
    }
    if (i % 7 === 0) frame['extra'] = POOL[next(POOL.length)];
    out.push(frame);
  }
  return out;
}

describe('isPlainFrame', () => {
  it('accepts only what FrameMetaSchema accepts, and what it accepts the schema returns unchanged', () => {
    const cases = [...frames(5_000), ...POOL, { name: 'x' }, { name: 'x', related_files: 0 }, ['name']];
    let plain = 0;
    for (const value of cases) {
      const parsed = FrameMetaSchema.safeParse(value);
      if (isPlainFrame(value)) {
        plain++;
        expect(parsed.success, JSON.stringify(value)).toBe(true);
        expect(parsed.data).toStrictEqual(value);
      } else {
        // Nothing the schema accepts is left to the slow path without reason: every case it accepts is plain.
        expect(parsed.success, JSON.stringify(value)).toBe(false);
      }
    }
    // The generator reaches both sides.
    expect(plain).toBeGreaterThan(50);
    expect(plain).toBeLessThan(cases.length - 50);
  });
});

describe('DataMetaSchema frames', () => {
  it('gives the same verdict and value as every frame through FrameMetaSchema', () => {
    const all = frames(3_000);
    for (let i = 0; i < all.length; i += 3) {
      const input = meta(all.slice(i, i + 3));
      const now = DataMetaSchema.safeParse(structuredClone(input));
      const before = Reference.safeParse(structuredClone(input));
      expect(now.success).toBe(before.success);
      if (now.success) expect(now.data).toStrictEqual(before.data);
      else expect(summarizeIssues(now.error)).toBe(summarizeIssues(before.error!));
    }
  });

  it('keeps the frames as sent (no copy per frame)', () => {
    // The shape CVAT 2.73 documents (cvat/schema.yml, FrameMeta: name and related_files required).
    const sent = [
      { width: 1920, height: 1080, name: 'd1/f0.jpg', related_files: 0, has_related_context: false },
      { width: 1920, height: 1080, name: 'd1/f1.jpg', related_files: 2, has_related_context: true },
    ];
    const parsed = DataMetaSchema.parse(meta(sent));
    expect(parsed.frames![0]).toBe(sent[0]);
    expect(parsed.frames![1]).toBe(sent[1]);
  });

  it('names the field of a bad frame, and reports at most three bad frames of a meta', () => {
    const one = DataMetaSchema.safeParse(meta([{ name: 'ok.jpg' }, { name: 7 }]));
    expect(one.success).toBe(false);
    expect(summarizeIssues(one.error!)).toMatch(/^frames\.1\.name: /);

    const many = DataMetaSchema.safeParse(meta(Array.from({ length: 100_000 }, () => ({ name: 'a.jpg', related_files: -1 }))));
    expect(many.success).toBe(false);
    expect(many.error!.issues.map((issue) => issue.path.join('.'))).toEqual(['frames.0.related_files', 'frames.1.related_files', 'frames.2.related_files']);
  });

  it('still takes null and absent frames as before', () => {
    expect(DataMetaSchema.parse(meta(null)).frames).toBeNull();
    expect(DataMetaSchema.parse({ size: 0, start_frame: 0, stop_frame: 0 }).frames).toEqual([]);
    expect(DataMetaSchema.safeParse(meta('not a list')).success).toBe(false);
  });
});
