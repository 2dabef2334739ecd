import { describe, expect, it } from 'vitest';
import { PendingTasks } from '../src/daemon/coalesce.js';

describe('PendingTasks', () => {
  it('merges a burst for one task into one entry and counts the merged deliveries', () => {
    const pending = new PendingTasks(10);
    expect(pending.add(7)).toBe('queued');
    for (let i = 0; i < 999; i++) expect(pending.add(7)).toBe('coalesced');
    expect(pending.size).toBe(1);
    expect(pending.take()).toEqual({ taskIds: [7], full: false });
    expect(pending.waiting).toBe(false);
    expect(pending.drainStats()).toEqual({ deliveries: 1000, coalesced: 999, overflowed: 0 });
    expect(pending.drainStats()).toEqual({ deliveries: 0, coalesced: 0, overflowed: 0 });
  });

  it('past its bound owes a complete listing instead of dropping a task, and stays bounded', () => {
    const pending = new PendingTasks(3);
    for (let id = 1; id <= 1000; id++) pending.add(id);
    pending.add(2); // still waiting: merged, not an overflow
    expect(pending.size).toBe(3);
    expect(pending.waiting).toBe(true);
    expect(pending.take()).toEqual({ taskIds: [1, 2, 3], full: true });
    expect(pending.drainStats()).toEqual({ deliveries: 1001, coalesced: 1, overflowed: 997 });
    // Taken: the next pass owes nothing until new deliveries come.
    expect(pending.take()).toEqual({ taskIds: [], full: false });
    expect(pending.add(4)).toBe('queued');
  });

  it('takes back what a failed pass took, within its bound', () => {
    const pending = new PendingTasks(3);
    pending.add(1);
    pending.add(2);
    const look = pending.take();
    pending.add(9);
    pending.putBack(look);
    expect(pending.take()).toEqual({ taskIds: [9, 1, 2], full: false });
    pending.add(7);
    pending.putBack({ taskIds: [1, 2, 3], full: false });
    // 7, 1 and 2 fit; 3 does not: a complete listing is owed for it.
    expect(pending.take()).toEqual({ taskIds: [7, 1, 2], full: true });
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new PendingTasks(0)).toThrow(RangeError);
    expect(() => new PendingTasks(1.5)).toThrow(RangeError);
  });
});
