/** The dashboard's HTML: one layout, tables with their CSV link, forms with the login's CSRF token. No script. */
import type { Login } from './auth.ts';
import { esc } from './html.ts';
import { lastPage, pagingLabel } from './paging.ts';
import type { Table } from './table.ts';

/** A page: its sections are HTML or tables; `refreshS` reloads it (health pages: a silent router turns red). */
export interface Page {
  title: string;
  sections: Array<string | Table>;
  refreshS?: number | undefined;
}

// Fits a phone (390 px) and a laptop (1366 px): the header and forms wrap, a chart shrinks to its box, and a table
// wider than the screen scrolls inside its own box (.scroll) instead of widening the page.
const STYLE = `
*{box-sizing:border-box}body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#111;background:#f6f7f9}
header{background:#1e293b;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;gap:6px 16px;align-items:center}
header a{color:#cbd5e1;text-decoration:none}header a:hover{color:#fff}header .me{margin-left:auto}
header form{display:inline}header button{background:none;border:1px solid #64748b;color:#cbd5e1;cursor:pointer}
main{padding:12px 16px;max-width:100%}h1{font-size:20px;margin:8px 0;overflow-wrap:anywhere}
h2{font-size:16px;margin:16px 0 6px}p,.error,.ok{overflow-wrap:anywhere}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{border:1px solid #e2e8f0;padding:3px 6px;
text-align:left;white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fee2e2;color:#991b1b}tr.bad td:nth-child(2){font-weight:bold}tr.warn td{background:#fef3c7}
.csv{font-size:12px;margin-left:8px}.chart{margin:8px 0;background:#fff;border:1px solid #e2e8f0;padding:6px;
width:100%;max-width:740px}.chart svg{width:100%;height:auto;font-size:10px}.chart .grid{stroke:#e2e8f0}
.legend .key{margin-right:10px;font-size:12px;display:inline-block}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
.error{background:#fee2e2;border:1px solid #fca5a5;padding:8px;margin:8px 0}.note{color:#475569}
.state{padding:6px 8px}.state.bad{background:#fee2e2;color:#991b1b}.state.good{background:#dcfce7}
.ok{background:#dcfce7;border:1px solid #86efac;padding:8px;margin:8px 0}form.inline{display:inline}
.scroll{overflow-x:auto;max-width:100%}.paging{font-size:12px;color:#475569;margin:4px 0}
form label{display:inline-block;margin:2px 0}input,select,button{max-width:100%}
.login{max-width:320px;margin:60px auto;background:#fff;padding:16px;border:1px solid #e2e8f0}
.login input{width:100%;margin:4px 0 10px}
@media (max-width:600px){main{padding:8px}header{padding:6px 8px}}`;

/** The table's page links: which rows of how many, and the pages around. */
function pagingHtml(t: Table, pageHref: ((page: number) => string) | null): string {
  const p = t.paging;
  if (p === undefined || (p.total <= p.size && p.page === 1) || pageHref === null) return '';
  const last = lastPage(p);
  const link = (page: number, label: string): string =>
    page >= 1 && page <= last && page !== p.page ? `<a href="${esc(pageHref(page))}">${label}</a>` : '';
  const links = [link(1, 'first'), link(p.page - 1, '← previous'), link(p.page + 1, 'next →'), link(last, 'last')];
  return `<p class="paging">${esc(pagingLabel(p))} ${links.filter((l) => l !== '').join(' · ')}</p>`;
}

export function tableHtml(
  t: Table,
  csvHref: string | null,
  pageHref: ((page: number) => string) | null = null,
): string {
  const extra = t.actions?.cell;
  const head =
    t.columns.map((c) => `<th>${esc(c.label)}</th>`).join('') + (extra ? `<th>${esc(t.actions!.label)}</th>` : '');
  const body = t.rows
    .map((r, i) => {
      const cls = t.rowClass?.[i];
      const cells = r.map((v, k) => `<td${t.columns[k]?.numeric ? ' class="n"' : ''}>${esc(v)}</td>`).join('');
      return `<tr${cls ? ` class="${esc(cls)}"` : ''}>${cells}${extra ? `<td>${extra(i)}</td>` : ''}</tr>`;
    })
    .join('');
  const csv = csvHref === null ? '' : `<a class="csv" href="${esc(csvHref)}" download>CSV</a>`;
  const empty = t.rows.length === 0 ? '<p class="note">none</p>' : '';
  return (
    `<h2>${esc(t.title)}${csv}</h2>${empty}${pagingHtml(t, pageHref)}` +
    `<div class="scroll"><table id="${esc(t.id)}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`
  );
}

export function layout(title: string, login: Login | null, body: string, refreshS?: number): string {
  const nav =
    login === null
      ? ''
      : '<a href="/revenue">Revenue</a><a href="/routers">Routers</a><a href="/gaps">Gaps</a>' +
        '<a href="/audit">Audit</a><a href="/venues">Venues</a><a href="/alerts">Alerts</a>' +
        '<a href="/settings">Settings</a>' +
        `<span class="me">${esc(login.user)} (${esc(login.role)}) · times in ${esc(login.zone)}</span>` +
        `<form method="post" action="/logout"><input type="hidden" name="csrf" value="${esc(login.csrf)}">` +
        '<button>Log out</button></form>';
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    (refreshS ? `<meta http-equiv="refresh" content="${refreshS}">` : '') +
    `<title>${esc(title)} · sluice fleet</title><style>${STYLE}</style></head>` +
    `<body><header><strong>sluice fleet</strong>${nav}</header><main><h1>${esc(title)}</h1>${body}</main></body></html>`
  );
}

export function loginPage(error: string | null, user = ''): string {
  return layout(
    'Log in',
    null,
    `<form class="login" method="post" action="/login">${error ? `<div class="error">${esc(error)}</div>` : ''}` +
      `<label>User<input name="user" autocomplete="username" value="${esc(user)}" required></label>` +
      '<label>Password<input name="password" type="password" autocomplete="current-password" required></label>' +
      '<button>Log in</button></form>',
  );
}

export const errorBox = (message: string): string => `<div class="error">${esc(message)}</div>`;
export const okBox = (message: string): string => `<div class="ok">${esc(message)}</div>`;

/** The end-session and grant forms of one live session's row (admins only). */
export function sessionActions(router: string, mac: string, csrf: string): string {
  const base = `/routers/${encodeURIComponent(router)}`;
  const hidden =
    `<input type="hidden" name="csrf" value="${esc(csrf)}">` + `<input type="hidden" name="mac" value="${esc(mac)}">`;
  return (
    `<form class="inline" method="post" action="${base}/terminate">${hidden}<button>End session</button></form> ` +
    `<form class="inline" method="post" action="${base}/grant">${hidden}` +
    '<input name="amount" type="number" min="1" value="30" style="width:5em" aria-label="amount">' +
    '<select name="unit" aria-label="unit"><option>minutes</option><option>hours</option><option>MiB</option>' +
    '<option>GiB</option></select> <button>Grant</button></form>'
  );
}

/** A grant to any MAC on a router (a new session, or a top-up of its live one). */
export function grantForm(router: string, csrf: string): string {
  return (
    `<h2>Grant to a device</h2><form method="post" action="/routers/${esc(encodeURIComponent(router))}/grant">` +
    `<input type="hidden" name="csrf" value="${esc(csrf)}">` +
    '<input name="mac" placeholder="aa:bb:cc:dd:ee:ff" required aria-label="MAC"> ' +
    '<input name="amount" type="number" min="1" value="1" style="width:5em" aria-label="amount">' +
    '<select name="unit" aria-label="unit"><option>hours</option><option>minutes</option><option>MiB</option>' +
    '<option>GiB</option></select> <button>Grant</button></form>'
  );
}
