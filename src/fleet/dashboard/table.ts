/**
 * What a page shows as a table, as text cells: the page's HTML and its CSV export are both made from the same Table,
 * so the file an operator downloads holds exactly what the page showed.
 */
import type { Paging } from './paging.ts';

export interface Column {
  key: string;
  label: string;
  /** Numbers are right-aligned in the page. */
  numeric?: boolean;
}

export interface Table {
  id: string;
  title: string;
  columns: readonly Column[];
  rows: ReadonlyArray<readonly string[]>;
  /** Per row, a CSS class for the page (e.g. `bad` for a red router); not exported. */
  rowClass?: ReadonlyArray<string | undefined>;
  /** Which page of the rows this is (paging.ts); absent: the table is bounded by what it is (e.g. one row). */
  paging?: Paging;
  /** A last column of forms per row (HTML), not exported. */
  actions?: { label: string; cell: (row: number) => string };
}

/**
 * RFC 4180 CSV with a header row. A cell that a spreadsheet would run as a formula (starting with =, +, -, @, a tab
 * or a CR) is prefixed with an apostrophe (OWASP's advice): a router id or a user name is never run on an operator's
 * machine. Numbers are exported as the page shows them, so a negative number would be prefixed too; none of the
 * dashboard's figures is negative. With `zone`, a last column `time zone` holds it on every row.
 */
export function toCsv(table: Table, zone?: string): string {
  const cell = (v: string): string => {
    const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  // The zone its days and times are in, on every row: a file that leaves the page still says which clock it read.
  const head = table.columns.map((c) => c.label);
  const lines =
    zone === undefined ? [head, ...table.rows] : [[...head, 'time zone'], ...table.rows.map((r) => [...r, zone])];
  return lines.map((l) => l.map(cell).join(',')).join('\r\n') + '\r\n';
}
