/**
 * Just enough of a browser for the pay page's DOM part (portal.js) to run in node: the elements of index.html that
 * have an id or a data-i18n key (their `hidden` as the HTML says), createElement, events, timers the test fires itself,
 * a clock the test moves, navigator.languages, and fetch to a base URL (the real endpoint) or a test's handler.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { createContext, Script } from 'node:vm';
import { webcrypto } from 'node:crypto';

const ROOT = new URL('../../', import.meta.url).pathname;
export const PORTAL_DIR = `${ROOT}files/usr/share/sluice/portal`;
/**
 * A page script, compiled once for all the pages a file loads: each page runs it in a context of its own, as a browser
 * runs it in each tab, without compiling it again.
 */
const pageScript = (file: string): Script =>
  new Script(readFileSync(`${PORTAL_DIR}/${file}`, 'utf8'), { filename: `${PORTAL_DIR}/${file}` });
const PORTAL_JS = pageScript('portal.js');
const BATCH_PAGE_JS = pageScript('batch-page.js');
/**
 * The batch-settlement signing bundle is built (scripts/build-batch.mjs), not kept in git: a fresh clone's first run
 * builds it here, so the fast tier needs nothing but `npm ci`.
 */
let batchScript: Script | undefined;
function batchJs(): Script {
  const file = `${PORTAL_DIR}/batch.js`;
  if (batchScript !== undefined) return batchScript;
  if (!existsSync(file)) {
    // Test files run side by side: each builds its own copy and renames it in, so no reader sees half a file.
    const own = `${file}.${process.pid}.tmp`;
    execFileSync(process.execPath, ['scripts/build-batch.mjs', own], { cwd: ROOT, stdio: 'inherit' });
    renameSync(own, file);
  }
  batchScript = pageScript('batch.js');
  return batchScript;
}
const INDEX_HTML = readFileSync(`${PORTAL_DIR}/index.html`, 'utf8');
/** The page's scripts after portal.js (restore.js, qr.js, elsewhere.js), in the order index.html loads them. */
const SCRIPT_NAMES = [...INDEX_HTML.matchAll(/<script src="\/([a-z0-9-]+\.js)"><\/script>/g)].map((m) => m[1]!);
const OTHER_SCRIPTS = SCRIPT_NAMES.slice(SCRIPT_NAMES.indexOf('portal.js') + 1).map((f) => pageScript(f));
/** The scripts before portal.js other than the batch-settlement pair (loaded below, optionally): cashu-page.js. */
const EARLY_SCRIPTS = SCRIPT_NAMES.slice(0, SCRIPT_NAMES.indexOf('portal.js'))
  .filter((f) => f !== 'batch.js' && f !== 'batch-page.js')
  .map((f) => pageScript(f));

type Listener = (ev: { preventDefault(): void }) => void;

export class FakeElement {
  id = '';
  textContent = '';
  hidden = false;
  className = '';
  value = '';
  disabled = false;
  type = '';
  min = '';
  max = '';
  readonly children: FakeElement[] = [];
  private readonly attributes = new Map<string, string>();
  private readonly listeners = new Map<string, Listener[]>();

  constructor(readonly tagName: string) {}

  appendChild(child: FakeElement): FakeElement {
    this.children.push(child);
    return child;
  }
  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value);
  }
  getAttribute(name: string): string | null {
    return this.attributes.get(name) ?? null;
  }
  addEventListener(type: string, fn: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  dispatch(type: string): void {
    for (const fn of this.listeners.get(type) ?? []) fn({ preventDefault() {} });
  }
  /** This element and everything under it. */
  all(): FakeElement[] {
    return [this, ...this.children.flatMap((c) => c.all())];
  }
  /** The text of this element and its descendants, as a reader sees it. */
  text(): string {
    return [this.textContent, ...this.children.map((c) => c.text())].filter((s) => s !== '').join(' ');
  }
}

export interface FakeResponse {
  status: number;
  body?: unknown;
  text?: string;
  headers?: Record<string, string>;
}
export type FetchHandler = (
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
) => Promise<FakeResponse> | FakeResponse;

export interface PageOptions {
  /** The endpoint the page's fetches go to, or a handler answering them in the test. */
  base?: string;
  handler?: FetchHandler;
  languages?: string[];
  /**
   * The browser's localStorage, kept across loads when the test passes the same map (absent: none, as in private mode).
   */
  storage?: Map<string, string>;
  ethereum?: { request(args: { method: string; params?: unknown[] }): Promise<unknown> };
  /** The page's clock at load (default 2026-01-01); a page that signs for a real chain needs the real time. */
  now?: number;
  /** false: the page without its batch-settlement scripts (a router whose page predates them). */
  batch?: boolean;
  /**
   * The address's query, e.g. `?voucher=…` (a printed ticket's QR link); the page may drop it (history.replaceState).
   */
  search?: string;
}

export interface FakePage {
  byId(id: string): FakeElement;
  /** The calls the page made, path and method. */
  fetches: Array<{ path: string; method: string }>;
  /**
   * Runs the page's intervals with this period once (1000: the countdown; 30000: the status refresh), and its
   * timeouts of this delay.
   */
  fire(periodMs: number): void;
  /** Moves the page's clock. */
  advance(ms: number): void;
  portal: Record<string, any>;
  /** batch-page.js's surface (SluiceBatchPage); `pending` is what its last click started. */
  batch: Record<string, any>;
  /** The restore box's script (restore.js). */
  restore: Record<string, any>;
  /** Until the page's fetches so far are answered and their handlers ran. */
  settle(): Promise<void>;
  htmlLang(): string;
  /** The page's address now. */
  address(): string;
}

/** Loads portal.js against index.html's elements; resolves once the page's first loads are done. */
export async function loadPage(o: PageOptions): Promise<FakePage> {
  const elements = new Map<string, FakeElement>();
  const marked: FakeElement[] = [];
  const created: FakeElement[] = [];
  for (const m of INDEX_HTML.matchAll(/<([a-z0-9]+)((?:\s+[a-z0-9-]+(?:="[^"]*")?)*)\s*>/g)) {
    const attrs = new Map([...m[2]!.matchAll(/([a-z0-9-]+)(?:="([^"]*)")?/g)].map((a) => [a[1]!, a[2] ?? ''] as const));
    if (!attrs.has('id') && !attrs.has('data-i18n')) continue;
    const el = new FakeElement(m[1]!);
    el.id = attrs.get('id') ?? '';
    el.hidden = attrs.has('hidden');
    el.className = attrs.get('class') ?? '';
    for (const [k, v] of attrs) el.setAttribute(k, v);
    if (el.id) elements.set(el.id, el);
    if (attrs.has('data-i18n')) marked.push(el);
  }
  const documentElement = { lang: 'en' };
  const document = {
    readyState: 'complete',
    documentElement,
    title: '',
    // What the page built itself (the Cashu card) is found by its id as a browser finds it.
    getElementById: (id: string) => elements.get(id) ?? created.find((e) => e.getAttribute('id') === id) ?? null,
    querySelectorAll: (sel: string) => {
      if (sel !== '[data-i18n]') throw new Error(`selector ${sel}`);
      return marked;
    },
    createElement: (tag: string) => {
      const e = new FakeElement(tag);
      created.push(e);
      return e;
    },
    addEventListener: () => undefined,
  };
  let now = o.now ?? Date.parse('2026-01-01T00:00:00Z');
  const FakeDate = class extends Date {
    static override now(): number {
      return now;
    }
  };
  const intervals: Array<{ fn: () => void; ms: number }> = [];
  const timeouts = new Set<{ fn: () => void; ms: number }>();
  const fetches: Array<{ path: string; method: string }> = [];
  const pending = new Set<Promise<unknown>>();
  const fetchFn = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) => {
    fetches.push({ path, method: init.method ?? 'GET' });
    const answer = (async () => {
      if (o.handler) {
        const r = await o.handler(path, init);
        const text = r.text ?? (r.body === undefined ? '' : JSON.stringify(r.body));
        const headers = new Headers(r.headers ?? {});
        return { status: r.status, headers, text: async () => text };
      }
      const res = await fetch(`${o.base}${path}`, init);
      const text = await res.text();
      return { status: res.status, headers: res.headers, text: async () => text };
    })();
    pending.add(answer);
    void answer.finally(() => pending.delete(answer)).catch(() => undefined);
    return answer;
  };
  const location = {
    href: `http://192.168.1.1:2122/portal${o.search ?? ''}`,
    pathname: '/portal',
    search: o.search ?? '',
  };
  const sandbox: Record<string, unknown> = {
    document,
    fetch: fetchFn,
    btoa,
    crypto: webcrypto,
    Date: FakeDate,
    TextEncoder,
    TextDecoder,
    navigator: { languages: o.languages ?? ['en-US'] },
    location,
    URLSearchParams,
    history: {
      replaceState: (_state: unknown, _title: string, url: string) => {
        location.search = '';
        location.href = `http://192.168.1.1:2122${url}`;
      },
    },
    setInterval: (fn: () => void, ms: number) => {
      intervals.push({ fn, ms });
      return intervals.length;
    },
    setTimeout: (fn: () => void, ms: number) => {
      const t = { fn, ms };
      timeouts.add(t);
      return t;
    },
    clearTimeout: (t: { fn: () => void; ms: number }) => timeouts.delete(t),
    ...(o.ethereum && { ethereum: o.ethereum }),
    ...(o.storage && {
      localStorage: {
        getItem: (k: string) => o.storage!.get(k) ?? null,
        setItem: (k: string, v: string) => {
          o.storage!.set(k, String(v));
        },
      },
    }),
  };
  sandbox.window = sandbox;
  const context = createContext(sandbox);
  // In index.html's order: the batch-settlement bundle and its page logic, then portal.js.
  if (o.batch !== false) {
    batchJs().runInContext(context);
    BATCH_PAGE_JS.runInContext(context);
  }
  for (const script of EARLY_SCRIPTS) script.runInContext(context);
  PORTAL_JS.runInContext(context);
  for (const script of OTHER_SCRIPTS) script.runInContext(context);
  const portal = sandbox.SluicePortal as Record<string, any>;
  await portal.started;
  await (sandbox.SluiceRestore as { started?: Promise<unknown> } | undefined)?.started;
  const settle = async () => {
    // Each answer's handlers may fetch again: wait until no fetch is outstanding after a turn of the event loop.
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (pending.size === 0) break;
      await Promise.allSettled([...pending]);
    }
  };
  await settle();
  return {
    byId: (id) => {
      const el = elements.get(id);
      if (!el) throw new Error(`no #${id} in index.html`);
      return el;
    },
    fetches,
    fire: (ms) => {
      for (const i of intervals) if (i.ms === ms) i.fn();
      for (const t of [...timeouts])
        if (t.ms === ms) {
          timeouts.delete(t);
          t.fn();
        }
    },
    advance: (ms) => {
      now += ms;
    },
    portal,
    batch: sandbox.SluiceBatchPage as Record<string, any>,
    restore: sandbox.SluiceRestore as Record<string, any>,
    settle,
    htmlLang: () => documentElement.lang,
    address: () => location.href,
  };
}
