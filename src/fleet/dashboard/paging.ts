/**
 * Pages of a table: no page or CSV grows with what a router sends. Each paged table reads `<table id>_page` (1-based)
 * from the query, shows at most `size` rows of a stable order (one that ends in a unique key, so a row is on one page
 * only while nothing changes) and says which rows of how many it shows. A CSV is the page it links from.
 */
import { InputError } from './auth.ts';

export const PAGE_ROWS = 200;
/** Deeper than this an offset costs the database more than a page is worth: narrow the query instead. */
const MAX_PAGE = 10_000;

export interface PageAsk {
  /** 1-based. */
  page: number;
  size: number;
  offset: number;
}

export interface Paging extends PageAsk {
  /** Rows in all pages. */
  total: number;
  /** `total` is PostgreSQL's estimate of a table too large to count on each reload (pagedCount). */
  about?: boolean;
}

export function pageAsk(query: URLSearchParams, table: string, size = PAGE_ROWS): PageAsk {
  const name = `${table}_page`;
  const v = query.get(name);
  if (v === null || v === '') return { page: 1, size, offset: 0 };
  if (!/^[1-9]\d{0,5}$/.test(v) || Number(v) > MAX_PAGE)
    throw new InputError(`${name} must be a page number from 1 to ${MAX_PAGE} (got ${JSON.stringify(v)})`);
  const page = Number(v);
  return { page, size, offset: (page - 1) * size };
}

export const paging = (ask: PageAsk, total: number | string, about = false): Paging => ({
  ...ask,
  total: Number(total),
  ...(about && { about }),
});

/** "rows 201–400 of 300,001 (200 a page)", or "of about 3,153,470". */
export function pagingLabel(p: Paging): string {
  if (p.total === 0) return '';
  const first = Math.min(p.offset + 1, p.total);
  const last = Math.min(p.offset + p.size, p.total);
  const n = (x: number): string => x.toLocaleString('en-US');
  return `rows ${n(first)}–${n(last)} of ${p.about ? 'about ' : ''}${n(p.total)} (${n(p.size)} a page)`;
}

/** The last page a link may ask for: past MAX_PAGE a page is refused, however many rows there are. */
export const lastPage = (p: Paging): number => Math.min(MAX_PAGE, Math.max(1, Math.ceil(p.total / p.size)));
