/**
 * The dashboard's HTTP server (node:http): every page needs a login; forms that change something are POSTs that carry
 * the login's CSRF token and come from this origin; only admins act. Bad input gets a 400 page that says what is
 * wrong; a database that cannot be reached gets a 503 page, never a crash, and never the database's own text.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { databaseUnreachable, type Sql } from '../db/index.ts';
import { actionArgs, type Actions } from './actions.ts';
import { csrfMatches, InputError, LOGIN_TTL_MS, LoginBusy, type Login, type Logins } from './auth.ts';
import { errorBox, layout, loginPage, tableHtml, type Page } from './pages.ts';
import {
  auditScreen,
  csvHref,
  gapsScreen,
  NotFound,
  pageHref,
  revenueScreen,
  routerScreen,
  routersScreen,
  tableOf,
  type ScreenContext,
} from './screens.ts';
import { alertsScreen } from './alert-settings.ts';
import { saveSettings, settingsScreen } from './settings.ts';
import { venuesScreen } from './venue-paths.ts';
import { toCsv } from './table.ts';

export interface DashboardServerOptions {
  db: Sql;
  logins: Logins;
  actions: Actions | null;
  now: () => number;
  staleAfterMs: number;
  /** Cookies marked Secure (the dashboard is served over HTTPS, e.g. behind a reverse proxy). */
  secureCookies: boolean;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Has a zone's offsets' days kept and filled in the background (offset-fill.ts). */
  keepZone?: (zone: string) => void;
}

const COOKIE = 'sluice_fleet';
const MAX_BODY = 16 * 1024;
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

type Screen = (c: ScreenContext) => Promise<Page>;

function route(path: string): { screen: Screen; base: string } | null {
  const plain: Record<string, Screen> = {
    '/revenue': revenueScreen,
    '/routers': routersScreen,
    '/gaps': gapsScreen,
    '/audit': auditScreen,
    '/venues': venuesScreen,
    '/alerts': alertsScreen,
    '/settings': settingsScreen,
  };
  if (plain[path]) return { screen: plain[path]!, base: path };
  const m = /^\/routers\/([^/]+)$/.exec(path);
  if (m === null) return null;
  const name = pathPart(m[1]!);
  return { screen: (c) => routerScreen(c, name), base: path };
}

/** A percent-encoded path segment as text; an InputError for one that is not UTF-8's percent-encoding. */
function pathPart(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new InputError(`the path ${JSON.stringify(encoded)} is not valid percent-encoded UTF-8`);
  }
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (type !== 'application/x-www-form-urlencoded')
    throw new InputError('a form must be application/x-www-form-urlencoded');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new InputError(`a form is at most ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export class DashboardServer {
  private server: Server | null = null;

  constructor(private readonly o: DashboardServerOptions) {}

  async listen(port: number, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s === null) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private send(res: ServerResponse, status: number, body: string, type = 'text/html; charset=utf-8', extra = {}): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra });
    res.end(body);
  }

  private redirect(res: ServerResponse, to: string, extra: Record<string, string | string[]> = {}): void {
    res.writeHead(303, { ...SECURITY_HEADERS, location: to, ...extra });
    res.end();
  }

  private cookie(token: string, maxAgeS: number): string {
    return (
      `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}` +
      (this.o.secureCookies ? '; Secure' : '')
    );
  }

  /** A POST from another origin is refused whatever it carries (with the CSRF token, a second line of defence). */
  private sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') return origin === undefined;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let login: Login | null = null;
    try {
      const url = new URL(req.url ?? '/', 'http://dashboard');
      const path = url.pathname;
      const token = cookies(req).get(COOKIE);
      if (req.method === 'POST' && !this.sameOrigin(req))
        return this.send(res, 403, layout('Refused', null, errorBox('a form from another site is refused')));
      if (path === '/login') return await this.loginRoute(req, res);
      login = await this.o.logins.lookup(token);
      if (login === null) {
        if (req.method === 'GET') return this.redirect(res, '/login');
        return this.send(res, 401, loginPage('log in first'));
      }
      if (req.method === 'POST') {
        const body = await form(req);
        if (!csrfMatches(login, body.get('csrf')))
          return this.send(
            res,
            403,
            layout('Refused', login, errorBox('this form is stale or not ours (CSRF): reload the page')),
          );
        if (path === '/logout') {
          await this.o.logins.logout(token!);
          return this.redirect(res, '/login', { 'set-cookie': this.cookie('', 0) });
        }
        return await this.actionRoute(res, login, path, body);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return this.send(res, 405, 'method not allowed', 'text/plain');
      if (path === '/') return this.redirect(res, '/revenue');
      const csv = path.endsWith('.csv');
      const r = route(csv ? path.slice(0, -4) : path);
      if (r === null) throw new NotFound(`no page ${path}`);
      const page = await r.screen(this.context(login, url.searchParams));
      if (csv) {
        const t = tableOf(page, url.searchParams.get('table'));
        return this.send(res, 200, toCsv(t, login.zone), 'text/csv; charset=utf-8', {
          'content-disposition': `attachment; filename="sluice-fleet-${t.id}.csv"`,
        });
      }
      const body = page.sections
        .map((s) =>
          typeof s === 'string'
            ? s
            : tableHtml(s, csvHref(r.base, url.searchParams, s.id), (n) => pageHref(r.base, url.searchParams, s.id, n)),
        )
        .join('');
      return this.send(res, 200, layout(page.title, login, body, page.refreshS));
    } catch (err) {
      this.failed(res, login, err);
    }
  }

  private context(login: Login, query: URLSearchParams): ScreenContext {
    return {
      db: this.o.db,
      login,
      query,
      now: this.o.now(),
      staleAfterMs: this.o.staleAfterMs,
      zone: login.zone,
      canAct: (router) => this.o.actions?.canAct(router) ?? false,
      ...(this.o.keepZone !== undefined && { keepZone: this.o.keepZone }),
    };
  }

  private failed(res: ServerResponse, login: Login | null, err: unknown): void {
    if (res.headersSent) return void res.destroy();
    if (err instanceof InputError) return this.send(res, 400, layout('Bad request', login, errorBox(err.message)));
    if (err instanceof NotFound) return this.send(res, 404, layout('Not found', login, errorBox(err.message)));
    const message = err instanceof Error ? err.message : String(err);
    this.o.log('dashboard request failed', { reason: message });
    // The database's own words stay in the log: they may quote the request back, or tell the schema to a stranger.
    if (databaseUnreachable(err))
      return this.send(
        res,
        503,
        layout('Unavailable', login, errorBox('the fleet database did not answer: try again')),
      );
    this.send(res, 500, layout('Failed', login, errorBox('this page failed: the dashboard log says why')));
  }

  private async loginRoute(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return this.send(res, 200, loginPage(null));
    const body = await form(req);
    const user = body.get('user') ?? '';
    try {
      const from = req.socket.remoteAddress ?? 'unknown';
      const { token } = await this.o.logins.login(user, body.get('password') ?? '', from);
      this.redirect(res, '/revenue', { 'set-cookie': this.cookie(token, LOGIN_TTL_MS / 1000) });
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.o.log('dashboard login refused', { user, reason: err.message });
      this.send(res, err instanceof LoginBusy ? 429 : 401, loginPage(err.message, user));
    }
  }

  private async actionRoute(res: ServerResponse, login: Login, path: string, body: URLSearchParams): Promise<void> {
    const setting = /^\/settings\/(time-zone|alerts)$/.exec(path);
    if (setting !== null) return this.settingRoute(res, login, setting[1]!, body);
    const m = /^\/routers\/([^/]+)\/(terminate|grant)$/.exec(path);
    if (m === null) throw new NotFound(`no action ${path}`);
    if (login.role !== 'admin')
      return this.send(res, 403, layout('Refused', login, errorBox('read-only operators cannot act: ask an admin')));
    const router = pathPart(m[1]!);
    const back = `/routers/${encodeURIComponent(router)}`;
    if (this.o.actions === null) throw new InputError('actions are off: this dashboard has no MQTT connection');
    let action: ReturnType<typeof actionArgs>;
    try {
      action = actionArgs(m[2]!, body);
    } catch (err) {
      if (err instanceof InputError) return this.redirect(res, `${back}?error=${encodeURIComponent(err.message)}`);
      throw err;
    }
    let result: Awaited<ReturnType<Actions['run']>>;
    try {
      result = await this.o.actions.run(login.user, router, action.name, action.args);
    } catch (err) {
      if (err instanceof InputError) return this.redirect(res, `${back}?error=${encodeURIComponent(err.message)}`);
      const reason = err instanceof Error ? err.message : String(err);
      return this.redirect(res, `${back}?error=${encodeURIComponent(`not sent: ${reason}`)}`);
    }
    this.o.log('dashboard action', { user: login.user, router, cmd: action.name, ok: result.ok });
    this.redirect(res, `${back}?action=${encodeURIComponent(result.requestId)}`);
  }

  /** A Settings form: a user's own time zone (anyone's), where alerts go (admins only). */
  private async settingRoute(res: ServerResponse, login: Login, what: string, body: URLSearchParams): Promise<void> {
    if (what === 'alerts' && login.role !== 'admin')
      return this.send(res, 403, layout('Refused', login, errorBox('read-only operators cannot change alerts')));
    try {
      const said = await saveSettings({ db: this.o.db, login, keepZone: this.o.keepZone }, what, body);
      this.o.log('dashboard setting', { user: login.user, setting: what });
      this.redirect(res, `/settings?saved=${encodeURIComponent(said)}`);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.redirect(res, `/settings?error=${encodeURIComponent(err.message)}`);
    }
  }
}
