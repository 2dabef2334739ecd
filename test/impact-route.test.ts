/**
 * GET /impact's query and pacing (src/daemon/impact-route.ts): the query is checked like a
 * typed path, and a flood of queries cannot take the service's event loop — after a query
 * that cost T, the next is refused for T (on an injected clock, no timing).
 */
import { describe, expect, it } from 'vitest';
import { IMPACT_MAX_PATHS, ImpactPacer, parseImpactQuery } from '../src/daemon/impact-route.js';

describe('GET /impact', () => {
  it('takes share-relative paths and task ids, refusing every bad one at once', () => {
    expect(parseImpactQuery('/impact?path=images/./a.jpg&path=videos&task=3')).toEqual({ paths: ['images/a.jpg', 'videos'], taskIds: [3] });
    expect(parseImpactQuery('/impact?task=7')).toEqual({ paths: [''], taskIds: [7] });
    const bad = parseImpactQuery(`/impact?path=..%2Fetc&path=%2Fetc&task=0&task=1e3&path=${'a'.repeat(5000)}`);
    expect('errors' in bad && bad.errors).toHaveLength(5);
    const many = parseImpactQuery(`/impact?${Array.from({ length: IMPACT_MAX_PATHS + 1 }, (_, i) => `path=d${i}`).join('&')}`);
    expect('errors' in many && many.errors).toEqual([`at most ${IMPACT_MAX_PATHS} path parameters`]);
    expect(parseImpactQuery('/impact')).toEqual({ errors: ['give at least one path= (share-relative) or task='] });
  });

  it('refuses a query while the last one’s cost is not paid back, so queries get at most half the event loop', () => {
    let now = 1_000;
    const pacer = new ImpactPacer(() => now);
    let ran = 0;
    const costly = (ms: number) => () => {
      ran++;
      now += ms;
      return { status: 200 as const, body: {} };
    };
    expect(pacer.run(costly(300)).status).toBe(200); // 1000 → 1300, free again at 1600
    now += 299;
    const refused = pacer.run(costly(300));
    expect(refused).toEqual({ status: 429, body: { error: 'an impact query ran just now; ask again in 1 s' } });
    expect(ran).toBe(1);
    now += 1;
    expect(pacer.run(costly(0)).status).toBe(200);
    expect(pacer.run(costly(0)).status).toBe(200); // a free query leaves nothing to pay back
    expect(ran).toBe(3);
  });
});
