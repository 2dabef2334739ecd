/**
 * The rules a list walk follows so that no answer can keep it going for ever. CVAT's
 * pagination (cvat/apps/engine/pagination.py CustomPagination, a DRF
 * PageNumberPagination) honours any `page_size`, reports the total in `count` and
 * links `next` to page n+1, so a walk needs ceil(count / page_size) pages. It stops:
 * - when `next` is null or a page is empty (the normal end);
 * - with an error when `next` is not a URL with a page number, points back to a page
 *   already read (a loop), a page holds more items than asked for, the items exceed
 *   `count` while `next` still offers more, or `count` needs more pages than the cap;
 * - with an error at the hard page cap, whatever `count` says.
 */
import { WardenError } from '../errors.js';

export interface PagingLimits {
  pageSize: number;
  /** Hard cap on pages read for one list, whatever CVAT reports (--max-list-pages). */
  maxPages: number;
}

export class PageWalk {
  private readonly path: string;
  private readonly limits: PagingLimits;
  private readonly seen = new Set<number>();
  private items = 0;
  page = 1;

  constructor(path: string, limits: PagingLimits) {
    this.path = path;
    this.limits = limits;
  }

  /**
   * Takes the page just read; returns the next page number to read, or undefined when
   * the list is complete. Throws CVAT_BAD_RESPONSE when the answer cannot be trusted.
   */
  advance(page: { count: number; next?: string | null | undefined; results: readonly unknown[] }, baseUrl: string): number | undefined {
    const { pageSize, maxPages } = this.limits;
    this.seen.add(this.page);
    this.items += page.results.length;
    if (page.results.length > pageSize) {
      throw this.bad(`page ${this.page} holds ${page.results.length} items though ${pageSize} were asked for`);
    }
    if (!page.next || page.results.length === 0) return undefined;
    const needed = Math.ceil(page.count / pageSize);
    if (needed > maxPages) {
      throw this.bad(`it counts ${page.count} items, ${needed} pages of ${pageSize}, more than the cap of ${maxPages} pages (--max-list-pages)`);
    }
    if (this.items >= page.count) {
      throw this.bad(`it still offers a next page after ${this.items} items though it counts ${page.count} (an endless "next")`);
    }
    const next = nextPageNumber(page.next, baseUrl);
    if (next === undefined) throw this.bad(`its "next" link ${describeLink(page.next)} is not a URL with a page number`);
    if (this.seen.has(next) || next <= this.page) throw this.bad(`its "next" link on page ${this.page} points back to page ${next} (a loop)`);
    if (this.seen.size >= maxPages) throw this.bad(`it is still not done after ${maxPages} pages (--max-list-pages)`);
    this.page = next;
    return next;
  }

  private bad(problem: string): WardenError {
    return new WardenError('CVAT_BAD_RESPONSE', `CVAT's list ${this.path} cannot be trusted and was abandoned: ${problem}`);
  }
}

/**
 * The page number of a `next` link. Only the number is used, not the URL itself:
 * behind a proxy CVAT may report its internal host name there.
 */
export function nextPageNumber(next: string, baseUrl: string): number | undefined {
  let url: URL;
  try {
    url = new URL(next, baseUrl);
  } catch {
    return undefined;
  }
  const text = url.searchParams.get('page');
  if (text === null || !/^\d{1,9}$/.test(text)) return undefined;
  const page = Number(text);
  return page >= 1 ? page : undefined;
}

/** A `next` value for a message: bounded, and without anything that could be a query secret. */
function describeLink(next: string): string {
  const withoutQuery = next.split(/[?#]/, 1)[0] ?? '';
  return JSON.stringify(withoutQuery.length > 80 ? `${withoutQuery.slice(0, 80)}…` : withoutQuery);
}
