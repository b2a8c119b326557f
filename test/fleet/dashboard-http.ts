/** A dashboard's pages over plain HTTP for the fleet's tests: a login's cookie, a page, a form, a CSV parsed. */
import * as assert from 'uvu/assert';

export interface Visitor {
  get(path: string): Promise<{ status: number; text: string; location: string | null }>;
  post(path: string, fields: Record<string, string>): Promise<{ status: number; location: string | null }>;
  csv(path: string): Promise<string[][]>;
}

export async function logIn(base: string, user: string, password: string): Promise<Visitor> {
  const r = await fetch(new URL('/login', base), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ user, password }),
  });
  assert.is(r.status, 303, `login of ${user}`);
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const get = async (path: string) => {
    const res = await fetch(new URL(path, base), { headers: { cookie }, redirect: 'manual' });
    return { status: res.status, text: await res.text(), location: res.headers.get('location') };
  };
  return {
    get,
    async post(path, fields) {
      const csrf = /name="csrf" value="([^"]+)"/.exec((await get('/settings')).text)![1]!;
      const res = await fetch(new URL(path, base), {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf, ...fields }),
      });
      await res.text();
      return { status: res.status, location: res.headers.get('location') };
    },
    async csv(path) {
      const res = await get(path);
      assert.is(res.status, 200, `${path}: ${res.text}`);
      return parseCsv(res.text);
    },
  };
}

/** RFC 4180, as the dashboard writes it. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') ((cell += '"'), i++);
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') (row.push(cell), (cell = ''));
    else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      ((row = []), (cell = ''), i++);
    } else cell += ch;
  }
  return rows;
}
