/**
 * What a page's requests did, as Chromium's DevTools Network domain reports them: each exchange from
 * `requestWillBeSent` to `loadingFinished` (every byte of the body arrived and the loader closed) or `loadingFailed`.
 * A page that never reads a body still sees its request finish, unless the answer is one Chromium keeps in the
 * renderer until read (a `no-store` one): such an exchange stays at `headers`, and a client reading DevTools (or the
 * page's own loading state) waits on it forever. `settled` waits for every exchange to end, within a guard.
 */
import type { Page } from './browser.ts';
import { GUARD_FACTOR } from './lab.ts';

export interface Exchange {
  id: string;
  method: string;
  url: string;
  /** sent → headers (the answer's status and headers arrived) → finished, or failed at any point. */
  state: 'sent' | 'headers' | 'finished' | 'failed';
  status?: number;
  headers?: Record<string, string>;
  error?: string;
}

type Params = Record<string, unknown>;

export class NetworkLog {
  private readonly byId = new Map<string, Exchange>();

  private constructor(private readonly page: Page) {
    page.browser.on((method, p, sid) => {
      if (sid !== page.sessionId) return;
      const id = String(p['requestId']);
      if (method === 'Network.requestWillBeSent') {
        const r = p['request'] as { method: string; url: string };
        this.byId.set(id, { id, method: r.method, url: r.url, state: 'sent' });
        return;
      }
      const x = this.byId.get(id);
      if (!x) return;
      if (method === 'Network.responseReceived') {
        const r = p['response'] as { status: number; headers: Record<string, string> };
        x.status = r.status;
        x.headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
        if (x.state === 'sent') x.state = 'headers';
      } else if (method === 'Network.loadingFinished') {
        x.state = 'finished';
      } else if (method === 'Network.loadingFailed') {
        x.state = 'failed';
        x.error = describeFailure(p);
      }
    });
  }

  /** Starts recording the page's requests (Network.enable). */
  static async attach(page: Page): Promise<NetworkLog> {
    const log = new NetworkLog(page);
    await page.send('Network.enable');
    return log;
  }

  /** The exchanges whose URL starts with `prefix`, in the order they were sent. */
  to(prefix: string): Exchange[] {
    return [...this.byId.values()].filter((x) => x.url.startsWith(prefix));
  }

  /**
   * The exchanges to `prefix` once every one has finished or failed, or as they stand after `guardMs` (× the lab's
   * GUARD_FACTOR): the caller asserts on their states, so a test of a hang fails with the list instead of hanging.
   */
  async settled(prefix: string, guardMs = 5000): Promise<Exchange[]> {
    const deadline = Date.now() + guardMs * GUARD_FACTOR;
    for (;;) {
      const xs = this.to(prefix);
      if (xs.every((x) => x.state === 'finished' || x.state === 'failed') || Date.now() > deadline) return xs;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The body the page received for exchange `id` (DevTools keeps it once the exchange finished). */
  async body(id: string): Promise<string> {
    const r = (await this.page.send('Network.getResponseBody', { requestId: id })) as {
      body: string;
      base64Encoded: boolean;
    };
    return r.base64Encoded ? Buffer.from(r.body, 'base64').toString('utf8') : r.body;
  }
}

function describeFailure(p: Params): string {
  const cors = p['corsErrorStatus'] as { corsError?: string } | undefined;
  return [p['errorText'], p['blockedReason'], cors?.corsError].filter(Boolean).join(' ');
}

/** One line per exchange, for an assertion's message. */
export function describe(xs: readonly Exchange[]): string {
  return xs
    .map((x) => `${x.method} ${x.url} → ${x.status ?? '-'} ${x.state}${x.error ? ` (${x.error})` : ''}`)
    .join('\n');
}
