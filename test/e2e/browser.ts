/**
 * Headless Chromium inside a lab client's network namespace, driven over the DevTools protocol on a pipe
 * (`--remote-debugging-pipe`: NUL-terminated JSON on fds 3 and 4, what Puppeteer's pipe transport speaks), so the
 * browser's traffic is the client's: openNDS redirects it, sluice sees its MAC. No browser-automation dependency: the
 * few commands a customer's visit needs (navigate, evaluate, click, screenshot) are a page of code.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { GUARD_FACTOR } from './lab.ts';

export const CHROMIUM = process.env['SLUICE_E2E_CHROMIUM'] ?? '/usr/bin/chromium';

/** Why no browser can run here, or null when it can. */
export function browserUnavailableReason(): string | null {
  const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error || r.status !== 0) return `${CHROMIUM} does not run (apt-get install chromium)`;
  return null;
}

type Json = Record<string, unknown>;
interface Pending {
  resolve: (v: Json) => void;
  reject: (e: Error) => void;
  method: string;
}

export class Browser {
  private readonly child: ChildProcess;
  private readonly out: Writable;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(method: string, params: Json, sessionId: string | undefined) => void>();
  private readonly profile: string;
  private stderr = '';

  private constructor(child: ChildProcess, profile: string) {
    this.child = child;
    this.profile = profile;
    this.out = child.stdio[3] as Writable;
    const input = child.stdio[4] as Readable;
    let buf = '';
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      buf += chunk;
      for (let end = buf.indexOf('\0'); end >= 0; end = buf.indexOf('\0')) {
        const msg = JSON.parse(buf.slice(0, end)) as {
          id?: number;
          method?: string;
          params?: Json;
          result?: Json;
          error?: { message: string };
          sessionId?: string;
        };
        buf = buf.slice(end + 1);
        if (msg.id !== undefined) {
          const p = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          if (msg.error) p?.reject(new Error(`${p.method}: ${msg.error.message}`));
          else p?.resolve(msg.result ?? {});
        } else if (msg.method) {
          for (const l of this.listeners) l(msg.method, msg.params ?? {}, msg.sessionId);
        }
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    child.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited:\n${this.stderr.slice(-2000)}`));
      this.pending.clear();
    });
  }

  /** Starts Chromium in network namespace `ns` (null: this one). */
  static async launch(ns: string | null): Promise<Browser> {
    const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
    // The flags the machine notes ask for: no background connections (the lab has no internet), no sandbox (root).
    const flags = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-extensions',
      '--disable-dev-shm-usage',
      '--mute-audio',
      '--hide-scrollbars',
      `--user-data-dir=${profile}`,
      '--remote-debugging-pipe',
    ];
    const argv = ns ? ['ip', 'netns', 'exec', ns, CHROMIUM, ...flags] : [CHROMIUM, ...flags];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    process.once('exit', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const b = new Browser(child, profile);
    await b.send('Browser.getVersion');
    return b;
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.out.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  on(listener: (method: string, params: Json, sessionId: string | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A new tab at phone size (CSS px), attached with its own session. */
  async newPage(viewport: { width: number; height: number; mobile: boolean }): Promise<Page> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as {
      sessionId: string;
    };
    const page = new Page(this, sessionId);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { ...viewport, deviceScaleFactor: 1 });
    return page;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.send('Browser.close').catch(() => undefined);
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  /** Every URL the main frame navigated to, in order (redirects included): the path a customer took. */
  readonly navigations: string[] = [];

  constructor(
    readonly browser: Browser,
    readonly sessionId: string,
  ) {
    browser.on((method, params, sid) => {
      if (sid !== sessionId) return;
      if (method === 'Page.frameNavigated') {
        const frame = params['frame'] as { parentId?: string; url: string };
        if (!frame.parentId) this.navigations.push(frame.url);
      }
      if (method === 'Network.requestWillBeSent' && params['type'] === 'Document' && params['redirectResponse']) {
        this.navigations.push(String((params['redirectResponse'] as { url: string }).url));
      }
    });
  }

  send(method: string, params: Json = {}): Promise<Json> {
    return this.browser.send(method, params, this.sessionId);
  }

  /**
   * Navigates and waits for the load event of the page it ends on (redirects and meta refreshes followed by waitFor).
   */
  async goto(url: string): Promise<void> {
    await this.send('Network.enable');
    const loaded = new Promise<void>((resolve) => {
      const off = this.browser.on((method, _p, sid) => {
        if (sid === this.sessionId && method === 'Page.loadEventFired') {
          off();
          resolve();
        }
      });
    });
    const r = (await this.send('Page.navigate', { url })) as { errorText?: string };
    if (r.errorText) throw new Error(`navigate ${url}: ${r.errorText}`);
    await loaded;
  }

  /** Evaluates `expression` in the page (promises awaited) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails)
      throw new Error(`evaluate: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Polls `expression` until it is truthy; returns its value. */
  async waitFor<T>(what: string, expression: string, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs * GUARD_FACTOR;
    let last: unknown;
    for (;;) {
      try {
        const v = await this.evaluate<T>(expression);
        if (v) return v;
        last = v;
      } catch (err) {
        last = err; // a navigation in progress destroys the context: try again
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what} (last: ${String(last)}; at ${this.navigations.at(-1)})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * A real click (mouse events at the element's centre), as a finger would. Only once the element sits still and is
   * what the point hits: a page that is still laying out (an answer arriving, an image decoding) moves it between
   * measuring and pressing, and the press lands on whatever took its place.
   */
  async click(selector: string): Promise<void> {
    let last: { x: number; y: number } | null = null;
    const deadline = Date.now() + 10_000 * GUARD_FACTOR;
    for (;;) {
      const box = await this.evaluate<{ x: number; y: number; hit: boolean } | null>(`(() => {
        const el = document.querySelector(${JSON.stringify(selector)});
        if (!el) return null;
        el.scrollIntoView({ block: 'center' });
        const r = el.getBoundingClientRect();
        const x = r.left + r.width / 2, y = r.top + r.height / 2;
        return { x, y, hit: el.contains(document.elementFromPoint(x, y)) };
      })()`);
      if (!box) throw new Error(`click: no ${selector}`);
      if (box.hit && last !== null && last.x === box.x && last.y === box.y) {
        for (const type of ['mousePressed', 'mouseReleased']) {
          await this.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 });
        }
        return;
      }
      if (Date.now() > deadline) throw new Error(`click: ${selector} never sat still under the pointer`);
      last = box;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A PNG of the whole page (not only the viewport) written to `file`. */
  async screenshot(file: string): Promise<void> {
    const { data } = (await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true })) as {
      data: string;
    };
    writeFileSync(file, Buffer.from(data, 'base64'));
  }

  /** The page's width in CSS px versus the viewport's: > viewport means a horizontal scrollbar on the phone. */
  scrollWidth(): Promise<{ scroll: number; viewport: number }> {
    return this.evaluate('({ scroll: document.documentElement.scrollWidth, viewport: window.innerWidth })');
  }
}
