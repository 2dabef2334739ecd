/**
 * A min-heap of tasks by the time their next chunk comes due. Updates push a new
 * entry and leave the old one behind; `pop` skips entries that no longer match the
 * current due time (lazy deletion), so an update is O(log n) and nothing is scanned.
 */
interface Entry {
  id: number;
  at: number;
}

export class DueQueue {
  private heap: Entry[] = [];
  private readonly current = new Map<number, number>();

  get size(): number {
    return this.current.size;
  }

  /** Sets (or moves) the due time of `id`; Infinity removes it. */
  set(id: number, at: number): void {
    if (at === Infinity) {
      this.current.delete(id);
      return;
    }
    if (this.current.get(id) === at) return;
    this.current.set(id, at);
    this.push({ id, at });
    // Stale entries pile up only when due times move often; rebuild when they dominate.
    if (this.heap.length > 64 && this.heap.length > 4 * this.current.size) this.rebuild();
  }

  delete(id: number): void {
    this.current.delete(id);
  }

  /** The earliest due time, or undefined when empty. */
  peek(): number | undefined {
    this.dropStale();
    return this.heap[0]?.at;
  }

  /** Removes and returns every id due at or before `now`, earliest first. */
  popDue(now: number): number[] {
    const out: number[] = [];
    for (;;) {
      this.dropStale();
      const top = this.heap[0];
      if (!top || top.at > now) return out;
      this.pop();
      this.current.delete(top.id);
      out.push(top.id);
    }
  }

  private dropStale(): void {
    for (;;) {
      const top = this.heap[0];
      if (!top || this.current.get(top.id) === top.at) return;
      this.pop();
    }
  }

  private rebuild(): void {
    this.heap = [];
    for (const [id, at] of this.current) this.push({ id, at });
  }

  private push(entry: Entry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Entry).at <= entry.at) break;
      h[i] = h[parent] as Entry;
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as Entry).at < (h[l] as Entry).at ? r : l;
      if ((h[c] as Entry).at >= last.at) break;
      h[i] = h[c] as Entry;
      i = c;
    }
    h[i] = last;
  }
}
