// tier: fast
/**
 * The pay page as a customer meets it, against the LAN endpoint in this process (a stub backend, so each refusal can be
 * staged) and the page's own portal.js on a stand-in DOM (fake-dom.ts): the rate limit counts payment attempts, not
 * the page's own loads and polls; every message is the customer's, in their language; what can be known before a
 * signature is said before one; the voucher form only where vouchers are taken; the status box counts down, keeps a
 * live session through a 429, and explains a device the portal forgot.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { SluiceBackend } from '../../src/api/index.ts';
import { SluiceError } from '../../src/errors.ts';
import { HttpEndpoint } from '../../src/http/server.ts';
import type { Log } from '../../src/log.ts';
import type { X402Method } from '../../src/payments/exact/x402-exact.ts';
import { exactFace } from '../../src/payments/exact/index.ts';
import type { X402Face } from '../../src/payments/index.ts';
import type { Session } from '../../src/sessions/index.ts';
import { loadPage, PORTAL_DIR, type FakePage } from './fake-dom.ts';

const test = suite("pay page: the customer's way in");
const MAC = '02:00:00:00:0f:01';
const WALLET = `0x${'ab'.repeat(20)}`;
const ASSET = `0x${'cd'.repeat(20)}`;
const FACILITATOR_WORDS =
  'facilitator refused the payment: invalid_exact_evm_transaction_simulation_failed: ERC20: transfer amount ' +
  'exceeds balance Contract Call: address: 0x5FbDB2315678afecb367f032d93F642f64180aa3';

const PLANS = [
  {
    id: 'wifi',
    metric: 'seconds',
    stepSize: 60n,
    pricePerStep: 10_000n,
    asset: ASSET,
    currency: 'USDC',
    decimals: 6,
    minSteps: 1n,
    maxSteps: 100n,
  },
  {
    id: 'data',
    metric: 'bytes',
    stepSize: 1n << 30n,
    pricePerStep: 1_500_000n,
    asset: ASSET,
    currency: 'USDC',
    decimals: 6,
    minSteps: 1n,
    maxSteps: 10n,
  },
] as const;

function session(o: Partial<Session> = {}): Session {
  const now = Date.now();
  return {
    id: '00000000000000aa',
    mac: MAC,
    ip: '127.0.0.1',
    user: null,
    plan: 'wifi',
    metric: 'seconds',
    allotment: 600n,
    used: 0,
    bytes: 0,
    createdAt: now,
    startedAt: now,
    expiresAt: now + 600_000,
    endedAt: null,
    state: 'ACTIVE',
    endCause: null,
    payments: [],
    ...o,
  };
}

interface Stage {
  sessions: Map<string, Session>;
  purchase: (
    req: Record<string, any>,
  ) => Promise<{ session: Session; toppedUp: boolean; gate: string; quote?: unknown }>;
  purchases: number;
}

function stubBackend(stage: Stage): SluiceBackend {
  return {
    now: () => Date.now(),
    pricing: () => PLANS,
    quote: (req: { plan?: string; steps?: bigint }) => {
      const p = PLANS.find((x) => x.id === (req.plan ?? 'wifi'));
      if (!p) throw new SluiceError('ERR_UNKNOWN_PLAN', `no plan ${req.plan}`);
      const steps = req.steps ?? p.minSteps;
      return {
        plan: p.id,
        metric: p.metric,
        steps,
        allotment: steps * p.stepSize,
        price: steps * p.pricePerStep,
        asset: p.asset,
        currency: p.currency,
        decimals: p.decimals,
        stepSize: p.stepSize,
        pricePerStep: p.pricePerStep,
      };
    },
    session: ({ mac }: { mac?: string }) => (mac ? stage.sessions.get(mac) : undefined),
    sessions: () => [...stage.sessions.values()],
    purchase: async (req: Record<string, any>) => {
      stage.purchases++;
      return stage.purchase(req);
    },
  } as unknown as SluiceBackend;
}

const x402Stub = {
  requirementsFor: (q: { price: bigint }) => ({
    scheme: 'exact',
    network: 'eip155:84532',
    amount: q.price.toString(),
    asset: ASSET,
    payTo: `0x${'ef'.repeat(20)}`,
    maxTimeoutSeconds: 60,
    extra: { name: 'USDC', version: '2' },
  }),
  settlementOf: () => null,
} as unknown as X402Method;

interface Lines {
  msg: string;
  fields: Record<string, unknown>;
}

function captureLog(lines: Lines[]): Log {
  const keep = (msg: string, fields?: Record<string, unknown>) => {
    lines.push({ msg, fields: fields ?? {} });
  };
  return { debug: () => undefined, info: keep, warn: keep, error: keep } as unknown as Log;
}

async function start(
  o: {
    rateLimit?: number;
    vouchers?: boolean;
    x402?: boolean;
    faces?: X402Face[];
    macOf?: (ip: string) => Promise<string | null>;
    portalDir?: string;
  } = {},
) {
  const stage: Stage = {
    sessions: new Map(),
    purchases: 0,
    purchase: async () => {
      throw new SluiceError('ERR_INTERNAL', 'not staged');
    },
  };
  const lines: Lines[] = [];
  const endpoint = await HttpEndpoint.start({
    host: '127.0.0.1',
    port: 0,
    rateLimitPerMinute: o.rateLimit ?? 1000,
    backend: stubBackend(stage),
    schemes: o.faces ?? (o.x402 === false ? [] : [exactFace(x402Stub)]),
    forms: { voucher: o.vouchers ?? true },
    portalDir: o.portalDir ?? PORTAL_DIR,
    macOf: o.macOf ?? (async (ip) => (ip === '127.0.0.1' ? MAC : null)),
    log: captureLog(lines),
  });
  return { endpoint, stage, lines, base: `http://127.0.0.1:${endpoint.port}` };
}

function http(
  base: string,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {},
) {
  return new Promise<{ status: number; type: string; text: string; json: () => any }>((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        agent: false,
        ...(o.localAddress && { localAddress: o.localAddress }),
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type']),
            text,
            json: () => JSON.parse(text),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A wallet that records what it was asked; its token balance is `balance`. */
function fakeWallet(balance: bigint) {
  const calls: string[] = [];
  return {
    calls,
    request: async ({ method }: { method: string }) => {
      calls.push(method);
      if (method === 'eth_requestAccounts') return [WALLET];
      if (method === 'eth_chainId') return '0x14a34';
      if (method === 'eth_call') return `0x${balance.toString(16).padStart(64, '0')}`;
      if (method === 'eth_signTypedData_v4') return `0x${'11'.repeat(65)}`;
      throw new Error(`unexpected ${method}`);
    },
  };
}

function card(page: FakePage, plan: string) {
  const c = page.byId('plans').children.find((x) => x.getAttribute('data-plan') === plan);
  if (!c) throw new Error(`no card for ${plan}`);
  return { card: c, button: c.all().find((x) => x.tagName === 'button') };
}

test('rate_limit counts payment attempts, not page loads, the script, plans or status polls', async () => {
  const { endpoint, base, stage } = await start({ rateLimit: 2 });
  stage.purchase = async () => {
    throw new SluiceError('ERR_X402_SIGNATURE_INVALID', 'bad signature');
  };
  try {
    // Ten page views (about four requests each) within the minute: none is refused.
    for (let i = 0; i < 10; i++) {
      for (const path of ['/portal', '/portal.js', '/', '/session', '/buy?plan=wifi']) {
        const r = await http(base, path);
        assert.ok(r.status !== 429, `${path} view ${i}: ${r.status}`);
      }
    }
    // Payment payloads are what the limit counts: the third within the minute is refused, /buy and /voucher alike.
    const pay = () => http(base, '/buy?plan=wifi', { headers: { 'payment-signature': 'e30=' } });
    assert.is((await pay()).status, 402);
    assert.is((await pay()).status, 402);
    const third = await pay();
    assert.is(third.status, 429);
    assert.is(third.json().error.code, 'ERR_HTTP_RATE_LIMITED');
    const voucher = await http(base, '/voucher', { method: 'POST', body: '{"code":"x"}' });
    assert.is(voucher.status, 429);
    assert.is(stage.purchases, 2);
    // ...while the page itself still loads.
    assert.is((await http(base, '/session')).status, 404);
    assert.is((await http(base, '/')).status, 200);
  } finally {
    await endpoint.close();
  }
});

test('/buy: a payment still in flight is 409 (retry it, do not pay anew); a trial plan is 400', async () => {
  const { endpoint, base, stage } = await start();
  try {
    const pay = () => http(base, '/buy?plan=wifi', { headers: { 'payment-signature': 'e30=' } });
    for (const [code, status] of [
      ['ERR_PAYMENT_IN_PROGRESS', 409],
      ['ERR_TRIAL_PLAN', 400],
    ] as const) {
      stage.purchase = async () => {
        throw new SluiceError(code, 'staged');
      };
      const r = await pay();
      assert.is(r.status, status, code);
      assert.is(r.json().error.code, code);
    }
  } finally {
    await endpoint.close();
  }
});

/**
 * GETs on a kept-alive connection, each sent once the answer before it is read, as a browser reloading sends them, and
 * on a new connection after an answer that closes it (the endpoint's keep-alive ends after 100 requests): HTTP/1.1 read
 * plainly (a status line, headers, a body of a Content-Length or chunked). Node's client made a request, an agent's
 * queue and a response stream of each, most of a flood's CPU.
 */
function keptAlive(port: number) {
  let socket: Socket | null = null;
  let buffered: Buffer = Buffer.alloc(0);
  let wake: ((err?: Error) => void) | null = null;
  let ended: Error | null = null;
  const open = (): Socket => {
    const s = connect(port, '127.0.0.1');
    buffered = Buffer.alloc(0);
    ended = null;
    s.on('data', (d: Buffer) => {
      buffered = buffered.length === 0 ? d : Buffer.concat([buffered, d]);
      wake?.();
    });
    const end = (err?: Error) => {
      if (socket !== s) return;
      ended ??= err ?? new Error('the endpoint closed the connection');
      wake?.(ended);
    };
    s.on('error', end);
    s.on('close', () => end());
    return s;
  };
  /** The body from `at` and where the answer ends, or null while it is not all here. */
  const body = (head: string, at: number): { text: string; end: number } | null => {
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length !== null) {
      const end = at + Number(length[1]);
      return buffered.length < end ? null : { text: buffered.toString('utf8', at, end), end };
    }
    if (!/\r\ntransfer-encoding: *chunked/i.test(head)) throw new Error(`an answer of no known length:\n${head}`);
    const parts: Buffer[] = [];
    for (;;) {
      const line = buffered.indexOf('\r\n', at);
      if (line < 0) return null;
      const size = Number.parseInt(buffered.toString('latin1', at, line), 16);
      if (!Number.isSafeInteger(size)) throw new Error(`a chunk size of ${buffered.toString('latin1', at, line)}`);
      const next = line + 2 + size + 2;
      if (buffered.length < next) return null;
      if (size === 0) return { text: Buffer.concat(parts).toString('utf8'), end: next };
      parts.push(buffered.subarray(line + 2, line + 2 + size));
      at = next;
    }
  };
  return {
    async get(path: string): Promise<{ status: number; type: string; text: string }> {
      socket ??= open();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`);
      for (;;) {
        const headEnd = buffered.indexOf('\r\n\r\n');
        if (headEnd >= 0) {
          const head = buffered.toString('latin1', 0, headEnd);
          const answer = body(head, headEnd + 4);
          if (answer !== null) {
            buffered = buffered.subarray(answer.end);
            if (/\r\nconnection: *close/i.test(head)) {
              socket.destroy();
              socket = null;
            }
            const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1] ?? 0);
            const type = /\r\ncontent-type: *([^\r]*)/i.exec(head)?.[1] ?? 'undefined';
            return { status, type, text: answer.text };
          }
        }
        if (ended) throw ended;
        await new Promise<void>((resolve, reject) => {
          wake = (err) => (err ? reject(err) : resolve());
        });
        wake = null;
      }
    },
    close: () => socket?.destroy(),
  };
}

test('a flood of page loads is still bounded; a refused page load is a calm HTML page, not JSON', async () => {
  const { endpoint } = await start({ rateLimit: 2 });
  const connection = keptAlive(endpoint.port);
  try {
    let first429: { status: number; type: string; text: string } | undefined;
    for (let i = 0; i < 700 && !first429; i++) {
      const r = await connection.get('/portal');
      if (r.status === 429) first429 = r;
      else assert.is(r.status, 200);
    }
    assert.ok(first429, 'bounded');
    assert.match(first429!.type, /^text\/html/);
    assert.ok(!first429!.text.includes('ERR_'), first429!.text);
    assert.match(first429!.text, /wait a few seconds, then reload/);
  } finally {
    connection.close();
    await endpoint.close();
  }
});

test("an owner's edit of the page shows at the next load; a reload reads the files anew", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pay-page-'));
  const page = join(dir, 'index.html');
  writeFileSync(page, '<p>Cafe Alpha</p>');
  const { endpoint, base } = await start({ portalDir: dir });
  try {
    assert.is((await http(base, '/portal')).text, '<p>Cafe Alpha</p>');
    assert.is((await http(base, '/portal')).text, '<p>Cafe Alpha</p>', 'served again from what was read');
    // Written in place, one byte longer.
    writeFileSync(page, '<p>Cafe Alpha!</p>');
    assert.is((await http(base, '/portal')).text, '<p>Cafe Alpha!</p>', 'an edit in place');
    // A new file renamed over it, as an editor saves: the same size, another inode; its time in whole seconds, as
    // jffs2 keeps it.
    writeFileSync(join(dir, 'next.html'), '<p>Cafe Omega!</p>');
    renameSync(join(dir, 'next.html'), page);
    utimesSync(page, 1_764_000_000, 1_764_000_000);
    assert.is((await http(base, '/portal')).text, '<p>Cafe Omega!</p>', 'a file renamed over it');
    // An edit in place within the same second that keeps the size: nothing tells it, the bytes read before are
    // served until a reload.
    writeFileSync(page, '<p>Cafe Sigma!</p>');
    utimesSync(page, 1_764_000_000, 1_764_000_000);
    assert.is((await http(base, '/portal')).text, '<p>Cafe Omega!</p>', 'nothing tells the edit');
    endpoint.serve({ schemes: [exactFace(x402Stub)], forms: { voucher: true }, unavailable: [] });
    assert.is((await http(base, '/portal')).text, '<p>Cafe Sigma!</p>', 'after a reload');
    unlinkSync(page);
    const gone = await http(base, '/portal');
    assert.is(gone.status, 404, 'removed');
    assert.is(gone.json().error.code, 'ERR_HTTP_NOT_FOUND');
    writeFileSync(page, '<p>Cafe Alpha</p>');
    assert.is((await http(base, '/portal')).text, '<p>Cafe Alpha</p>', 'put back');
    assert.is((await http(base, '/portal.js')).status, 404, 'a file the directory does not hold');
  } finally {
    await endpoint.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a 429 shows a calm retry and keeps the live session in the status box', async () => {
  let limited = false;
  const live = { id: 'a', mac: MAC, state: 'ACTIVE', metric: 'seconds', allotment: '600', remaining: '300' };
  const page = await loadPage({
    ethereum: fakeWallet(10n ** 9n),
    handler: (path) => {
      if (path === '/')
        return {
          status: 200,
          body: {
            methods: { x402: true, voucher: true },
            plans: [
              {
                id: 'wifi',
                metric: 'seconds',
                step_size: '60',
                price_per_step: '10000',
                currency: 'USDC',
                decimals: 6,
                min_steps: '1',
                max_steps: '100',
                x402: { scheme: 'exact' },
              },
            ],
          },
        };
      if (limited)
        return {
          status: 429,
          body: { error: { code: 'ERR_HTTP_RATE_LIMITED', message: 'too many requests; slow down' } },
        };
      if (path === '/session') return { status: 200, body: { session: live } };
      return { status: 500, body: {} };
    },
  });
  const box = page.byId('session');
  assert.is(box.hidden, false);
  assert.match(box.textContent, /^Your access is active: 5 min left of 10 min\.$/);
  limited = true;
  page.fire(30_000);
  await page.settle();
  assert.is(box.hidden, false, 'the live session stays shown');
  assert.match(box.textContent, /5 min left/);
  card(page, 'wifi').button!.dispatch('click');
  await page.settle();
  const message = page.byId('message');
  assert.is(message.textContent, 'Too many attempts from this device. Please wait a minute, then try again.');
  assert.ok(!message.textContent.includes('{') && !message.textContent.includes('ERR_'));
});

test(
  "refused purchases: the customer's words on the page, " + 'the reason in an info log line with MAC, plan and code',
  async () => {
    const { endpoint, base, stage, lines } = await start();
    stage.purchase = async () => {
      throw new SluiceError('ERR_X402_SETTLE_FAILED', FACILITATOR_WORDS);
    };
    try {
      const wallet = fakeWallet(10n ** 9n);
      const page = await loadPage({ base, ethereum: wallet });
      card(page, 'wifi').button!.dispatch('click');
      await page.settle();
      assert.ok(wallet.calls.includes('eth_signTypedData_v4'), 'it got as far as paying');
      const text = page.byId('message').textContent;
      assert.is(
        text,
        'The payment did not go through and nothing was charged. Please check your wallet and try again.',
      );
      assert.ok(!/0x|ERC20|facilitator/i.test(text), text);
      const logged = lines.find((l) => l.msg === 'http purchase refused');
      assert.ok(logged, JSON.stringify(lines));
      assert.equal(
        [logged!.fields.mac, logged!.fields.plan, logged!.fields.code],
        [MAC, 'wifi', 'ERR_X402_SETTLE_FAILED'],
      );
      assert.match(String(logged!.fields.reason), /transfer amount exceeds balance/);
      // A voucher refused: its own line.
      stage.purchase = async () => {
        throw new SluiceError('ERR_VOUCHER_REJECTED', 'Invalid voucher');
      };
      const v = await http(base, '/voucher', { method: 'POST', body: '{"code":"nope"}' });
      assert.is(v.status, 403);
      const vl = lines.find((l) => l.msg === 'http voucher purchase refused');
      assert.equal([vl?.fields.mac, vl?.fields.code], [MAC, 'ERR_VOUCHER_REJECTED']);
    } finally {
      await endpoint.close();
    }
  },
);

test(
  'before the signature: a device the portal does not ' + 'list, a plan that cannot top up, a balance too low',
  async () => {
    const { endpoint, base, stage, lines } = await start({ macOf: async () => null });
    try {
      // Not on the portal's list: the unsigned /buy already says so (was a 402 offer, and a refusal after signing).
      const unknown = await http(base, '/buy?plan=wifi');
      assert.is(unknown.status, 403);
      assert.is(unknown.json().error.code, 'ERR_HTTP_CLIENT_UNKNOWN');
      assert.ok(
        lines.some(
          (l) => l.msg === 'http purchase refused before payment' && l.fields.code === 'ERR_HTTP_CLIENT_UNKNOWN',
        ),
      );
      const wallet = fakeWallet(10n ** 9n);
      const page = await loadPage({ base, ethereum: wallet });
      // The status box explains the forgotten device instead of vanishing.
      assert.is(page.byId('session').hidden, false);
      assert.match(page.byId('session').textContent, /not signed in to the WiFi right now\. Switch WiFi off and on/);
      card(page, 'wifi').button!.dispatch('click');
      await page.settle();
      assert.match(page.byId('message').textContent, /not signed in to the WiFi/);
      assert.equal(wallet.calls, [], 'the wallet was asked for nothing');
      assert.is(stage.purchases, 0);
    } finally {
      await endpoint.close();
    }

    const second = await start();
    try {
      second.stage.sessions.set(MAC, session({ metric: 'seconds' }));
      const offer = await http(second.base, '/buy?plan=data');
      assert.is(offer.status, 400);
      assert.is(offer.json().error.code, 'ERR_SESSION_METRIC_MISMATCH');
      assert.is((await http(second.base, '/buy?plan=wifi')).status, 402, 'the same metric tops up');
      const wallet = fakeWallet(10n ** 9n);
      const page = await loadPage({ base: second.base, ethereum: wallet });
      await page.settle();
      // Said on the card before any tap: its button is off and its line says why; the same metric's card still sells.
      const data = card(page, 'data');
      assert.ok(data.button!.disabled, 'no paying for a plan that cannot top up this session');
      assert.ok(
        data.card
          .all()
          .some(
            (x) =>
              x.textContent === 'You already have time running. Buy more time, or wait until it ends to buy this plan.',
          ),
        data.card
          .all()
          .map((x) => x.textContent)
          .join(' | '),
      );
      assert.not.ok(card(page, 'wifi').button!.disabled, 'more time can be bought');
      data.button!.dispatch('click'); // a tap that slips through (an old browser) is still refused before the wallet
      await page.settle();
      assert.is(
        page.byId('message').textContent,
        'You already have time running. Buy more time, or wait until it ends to buy this plan.',
      );
      assert.equal(wallet.calls, []);
      // The balance: read from the token before signing; too low, and nothing is signed.
      second.stage.sessions.clear();
      const poor = fakeWallet(5_000n);
      const page2 = await loadPage({ base: second.base, ethereum: poor });
      card(page2, 'wifi').button!.dispatch('click');
      await page2.settle();
      assert.is(
        page2.byId('message').textContent,
        'Your wallet does not hold enough USDC for this: it has 0.005 USDC, this costs 0.01 USDC. Nothing was charged.',
      );
      assert.ok(poor.calls.includes('eth_call') && !poor.calls.includes('eth_signTypedData_v4'), poor.calls.join());
      assert.is(second.stage.purchases, 0);
    } finally {
      await second.endpoint.close();
    }
  },
);

test("the page speaks the browser's language: de, es, fr, pt, with Intl numbers; others get English", async () => {
  const { endpoint, base } = await start();
  try {
    const expected: Record<string, [string, string, RegExp]> = {
      'de-DE': ['WLAN-Zugang', 'Wählen Sie einen Tarif.', /^0,01 USDC pro 1\sMin\.$/],
      es: ['Acceso WiFi', 'Elija un plan.', /^0,01 USDC por 1\smin$/],
      'fr-CA': ['Accès WiFi', 'Choisissez une offre.', /^0,01 USDC par 1\smin$/],
      'pt-BR': ['Acesso WiFi', 'Escolha um plano.', /^0,01 USDC por 1\smin$/],
      ja: ['WiFi access', 'Choose a plan.', /^0\.01 USDC per 1\smin$/],
    };
    for (const [language, [title, choose, priceLine]] of Object.entries(expected)) {
      const page = await loadPage({ base, languages: [language, 'en'], ethereum: fakeWallet(0n) });
      const h1 = page.byId('message'); // the message line, then a static heading
      assert.is(h1.textContent, choose, language);
      assert.is(page.byId('plans').children.length, 2);
      const wifi = card(page, 'wifi')
        .card.all()
        .find((x) => x.className === 'plan-price')!;
      assert.match(wifi.textContent, priceLine, `${language}: ${wifi.textContent}`);
      assert.is(page.htmlLang(), language === 'ja' ? 'en' : language.split('-')[0]);
      assert.ok(page.portal.t('title') === title, language);
    }
    const p = (await loadPage({ base, languages: ['de'] })).portal;
    assert.is(p.formatNumber('1234567.25'), '1.234.567,25');
    assert.is(p.leftText('bytes', String(1.5 * 2 ** 30)), '1,5\u00a0GiB');
    // Every language has every message.
    const keys = Object.keys(p.MESSAGES.en).sort();
    for (const l of ['de', 'es', 'fr', 'pt']) assert.equal(Object.keys(p.MESSAGES[l]).sort(), keys, l);
  } finally {
    await endpoint.close();
  }
});

test('the voucher form only where vouchers are taken; the endpoint says which methods exist', async () => {
  const off = await start({ vouchers: false });
  try {
    assert.equal((await http(off.base, '/')).json().methods, {
      x402: true,
      voucher: false,
      batch_settlement: false,
      upto: false,
      unavailable: [],
    });
    const page = await loadPage({ base: off.base });
    assert.is(page.byId('voucher-section').hidden, true);
    assert.is(page.byId('wallet-hint').hidden, false, 'no wallet in this browser');
    assert.is(page.byId('wallet-hint-voucher').hidden, true, 'no "use a voucher below"');
    const v = await http(off.base, '/voucher', { method: 'POST', body: '{"code":"x"}' });
    assert.is(v.status, 501);
    assert.is(off.stage.purchases, 0);
  } finally {
    await off.endpoint.close();
  }
  const only = await start({ x402: false, vouchers: true });
  try {
    assert.equal((await http(only.base, '/')).json().methods, {
      x402: false,
      voucher: true,
      batch_settlement: false,
      upto: false,
      unavailable: [],
    });
    const page = await loadPage({ base: only.base });
    assert.is(page.byId('voucher-section').hidden, false);
    assert.is(page.byId('wallet-section').hidden, true);
    assert.is(page.byId('message').textContent, 'Enter your voucher below.');
  } finally {
    await only.endpoint.close();
  }
});

test("plan titles are the plan's name; a top-up says what was added and the new total", async () => {
  const { endpoint, base, stage } = await start();
  try {
    const page = await loadPage({ base, ethereum: fakeWallet(10n ** 9n) });
    const titles = page
      .byId('plans')
      .children.map((c) => c.all().find((x) => x.className === 'plan-title')!.textContent);
    assert.equal(titles, ['Wifi', 'Data']);
    // A voucher that adds 10 min to a session with 10 min: the answer carries what it added.
    const before = session({ allotment: 600n });
    stage.sessions.set(MAC, before);
    stage.purchase = async () => {
      const cur = stage.sessions.get(MAC)!;
      const after = session({ allotment: cur.allotment + 600n, expiresAt: (cur.expiresAt ?? 0) + 600_000 });
      stage.sessions.set(MAC, after);
      return { session: after, toppedUp: true, gate: 'already-open' };
    };
    const r = await http(base, '/voucher', { method: 'POST', body: '{"code":"more"}' });
    assert.is(r.status, 200, r.text);
    assert.equal([r.json().topped_up, r.json().added], [true, '600']);
    page.byId('voucher-code').value = 'more';
    page.byId('voucher').dispatch('submit');
    await page.settle();
    assert.match(
      page.byId('message').textContent,
      /^Added 10\smin\. You now have (30|29)\smin left in total\.$/,
      page.byId('message').textContent,
    );
  } finally {
    await endpoint.close();
  }
});

test('long words wrap instead of widening a phone screen; no technical address reaches the page', async () => {
  const html = readFileSync(`${PORTAL_DIR}/index.html`, 'utf8');
  assert.match(html, /main \{[^}]*overflow-wrap: anywhere/);
  // The only address the page prints itself is its own URL (for a wallet app's browser), inside <main>.
  const p = (await loadPage({ handler: () => ({ status: 200, body: { plans: [] } }) })).portal;
  for (const body of [
    { error: { code: 'ERR_X402_VERIFY_REJECTED', message: FACILITATOR_WORDS } },
    {
      x402Version: 2,
      error: `ERR_X402_SETTLE_FAILED: ${FACILITATOR_WORDS}`,
      code: 'ERR_X402_SETTLE_FAILED',
      accepts: [],
    },
    { error: { code: 'ERR_SOMETHING_NEW', message: '0xdeadbeef' } },
    null,
  ]) {
    const text = p.errorText(402, body) as string;
    assert.ok(!/0x|ERR_|facilitator/i.test(text), text);
  }
});

test('a status question that failed (5xx) is asked again within seconds, not at the next 30 s refresh', async () => {
  let answers = 0;
  const page = await loadPage({
    handler: (path) => {
      if (path !== '/session') return { status: 200, body: { methods: { x402: true, voucher: false }, plans: [] } };
      answers++;
      return answers === 1
        ? { status: 502, body: { error: { code: 'ERR_INTERNAL', message: 'busy' } } }
        : {
            status: 200,
            body: {
              session: { id: 'a', mac: MAC, state: 'ACTIVE', metric: 'seconds', allotment: '3600', remaining: '600' },
            },
          };
    },
  });
  const box = page.byId('session');
  assert.ok(box.hidden, 'nothing known yet');
  page.advance(1000);
  page.fire(1000);
  await page.settle();
  assert.is(answers, 1, 'not asked again every second');
  page.advance(2500);
  page.fire(1000);
  await page.settle();
  assert.is(answers, 2, 'asked again 3 s after the failure');
  assert.not.ok(box.hidden);
  assert.match(box.textContent, /10 min left/);
  page.advance(5000);
  page.fire(1000);
  await page.settle();
  assert.is(answers, 2, 'and then only at the regular refresh');
});

test('remaining time counts down without a reload; run out, the router is asked again (not every second)', async () => {
  let remaining = '150';
  const page = await loadPage({
    handler: (path) =>
      path === '/session'
        ? {
            status: 200,
            body: { session: { id: 'a', mac: MAC, state: 'ACTIVE', metric: 'seconds', allotment: '3600', remaining } },
          }
        : { status: 200, body: { methods: { x402: true, voucher: false }, plans: [] } },
  });
  const box = page.byId('session');
  assert.match(box.textContent, /: 2 min left of 1 hr\.$/);
  page.advance(60_000);
  page.fire(1000);
  assert.match(box.textContent, /: 1 min left of 1 hr\.$/);
  page.advance(60_000);
  page.fire(1000);
  assert.match(box.textContent, /: 30 sec left of 1 hr\.$/);
  // Run out on the page's clock while the router still says ACTIVE (its tick lags): one question, not one a second.
  const polls = () => page.fetches.filter((f) => f.path === '/session').length;
  const before = polls();
  remaining = '0';
  page.advance(31_000);
  page.fire(1000);
  await page.settle();
  for (let i = 0; i < 5; i++) {
    page.advance(1000);
    page.fire(1000);
    await page.settle();
  }
  assert.is(polls(), before + 1);
  page.advance(5000);
  page.fire(1000);
  await page.settle();
  assert.is(polls(), before + 2);
  assert.match(box.textContent, /: 0 sec left of 1 hr\.$/);
});

test(
  'time and data in one: a plan with a time_limit says how long it is valid; a data session with a deadline ' +
    'shows the time left too',
  async () => {
    const start = Date.parse('2026-01-01T00:00:00Z') / 1000;
    const page = await loadPage({
      handler: (path) =>
        path === '/session'
          ? {
              status: 200,
              body: {
                session: {
                  id: 'a',
                  mac: MAC,
                  state: 'ACTIVE',
                  metric: 'bytes',
                  allotment: String(1 << 30),
                  remaining: String(1 << 29),
                  expires_at: start + 7200,
                },
              },
            }
          : {
              status: 200,
              body: {
                methods: { x402: true, voucher: false },
                plans: [
                  {
                    id: 'day',
                    metric: 'bytes',
                    step_size: String(1 << 30),
                    price_per_step: '100000',
                    currency: 'USDC',
                    decimals: 6,
                    min_steps: '1',
                    max_steps: '10',
                    time_limit: '86400',
                    x402: null,
                  },
                  {
                    id: 'gb',
                    metric: 'bytes',
                    step_size: String(1 << 30),
                    price_per_step: '100000',
                    currency: 'USDC',
                    decimals: 6,
                    min_steps: '1',
                    max_steps: '10',
                    x402: null,
                  },
                ],
              },
            },
    });
    const price = (plan: string) =>
      card(page, plan)
        .card.all()
        .find((x) => x.className === 'plan-price')!.textContent;
    assert.match(price('day'), /per 1\sGiB, valid for 1\sday/, price('day'));
    assert.not.match(price('gb'), /valid for/);
    const box = page.byId('session');
    assert.match(box.textContent, /: 512\sMiB left of 1\sGiB\. Time left to use it: 2\shr\.$/, box.textContent);
    page.advance(3600_000);
    page.fire(1000);
    assert.match(box.textContent, /Time left to use it: 1\shr\.$/, box.textContent);
  },
);

test(
  'a free-trial plan: its own card and button; the browser keeps a device token; a second trial says when the ' +
    'next one comes',
  async () => {
    const posts: Array<Record<string, unknown>> = [];
    let used = false;
    const storage = new Map<string, string>();
    const handler = (path: string, init: { method?: string; body?: string }) => {
      if (path === '/trial') {
        posts.push(JSON.parse(init.body ?? '{}') as Record<string, unknown>);
        if (used)
          return {
            status: 403,
            body: {
              error: { code: 'ERR_TRIAL_USED', message: 'used', next_at: Date.parse('2026-01-02T00:00:00Z') / 1000 },
            },
          };
        used = true;
        return {
          status: 200,
          body: {
            session: { id: 't', mac: MAC, state: 'ACTIVE', metric: 'seconds', allotment: '900', remaining: '900' },
            topped_up: false,
            added: '900',
            gate: 'opened',
          },
        };
      }
      if (path === '/session') return { status: 404, body: { error: { code: 'ERR_SESSION_NOT_FOUND', message: '' } } };
      return {
        status: 200,
        body: {
          methods: { x402: false, voucher: false },
          plans: [
            {
              id: 'try',
              metric: 'seconds',
              step_size: '900',
              price_per_step: '0',
              currency: 'USDC',
              decimals: 6,
              min_steps: '1',
              max_steps: '1',
              trial_every: '86400',
              x402: null,
            },
          ],
        },
      };
    };
    const page = await loadPage({ handler, storage });
    assert.is(page.byId('trial-section').hidden, false);
    const trialCard = (p: FakePage) => {
      const el = p.byId('trials').children.find((x) => x.getAttribute('data-plan') === 'try')!;
      return { card: el, button: el.all().find((x) => x.tagName === 'button') };
    };
    assert.equal(page.byId('plans').children.length, 0, 'not among the plans for sale');
    const c = trialCard(page);
    assert.match(c.card.text(), /15\smin free, once every 1\sday per device\./);
    c.button!.dispatch('click');
    await page.settle();
    assert.match(page.byId('message').textContent, /^Your free trial has started: 15\smin\.$/);
    assert.match(page.byId('session').textContent, /15\smin left/);
    const token = storage.get('sluice-device');
    assert.ok(token && /^[0-9a-f]{32}$/.test(token), 'a device token kept in the browser');
    // The same browser on a new (private) MAC: the same token goes with the request, and the router refuses.
    const again = await loadPage({ handler, storage });
    trialCard(again).button!.dispatch('click');
    await again.settle();
    assert.equal(
      posts.map((p) => p.device),
      [token, token],
    );
    assert.equal(
      posts.map((p) => p.plan),
      ['try', 'try'],
    );
    assert.match(again.byId('message').textContent, /^This device has had its free trial\. The next one from .+\.$/);
  },
);

test(
  "the router's trials all taken (ERR_TRIAL_LIMIT) and a method out of service get their own words, not the " +
    'generic failure',
  async () => {
    const handler = (path: string) => {
      if (path === '/trial')
        return {
          status: 403,
          body: {
            error: { code: 'ERR_TRIAL_LIMIT', message: 'limit', next_at: Date.parse('2026-01-02T00:00:00Z') / 1000 },
          },
        };
      if (path === '/session') return { status: 404, body: { error: { code: 'ERR_SESSION_NOT_FOUND', message: '' } } };
      return {
        status: 200,
        body: {
          methods: { x402: false, voucher: false },
          plans: [
            {
              id: 'try',
              metric: 'seconds',
              step_size: '900',
              price_per_step: '0',
              currency: 'USDC',
              decimals: 6,
              min_steps: '1',
              max_steps: '1',
              trial_every: '86400',
              x402: null,
            },
          ],
        },
      };
    };
    const page = await loadPage({ handler });
    page
      .byId('trials')
      .children[0]!.all()
      .find((x) => x.tagName === 'button')!
      .dispatch('click');
    await page.settle();
    assert.match(page.byId('message').textContent, /^All free trials are taken for now\. The next one from .+\.$/);
    const text = page.portal.errorText(503, {
      error: { code: 'ERR_PAYMENT_METHOD_UNAVAILABLE', message: 'x402 store damaged' },
    }) as string;
    assert.match(text, /^This way of paying is out of service on this router right now\./);
  },
);

test(
  "POST /trial: the caller's device gets the same purchase as ubus {payment: {method: trial, device}}; a used " +
    'trial is a 403 with next_at; counted as a payment attempt',
  async () => {
    const { endpoint, base, stage, lines } = await start({ rateLimit: 2 });
    try {
      const seen: Array<Record<string, any>> = [];
      stage.purchase = async (req) => {
        seen.push(req);
        if (seen.length > 1)
          throw new SluiceError('ERR_TRIAL_USED', 'used', { details: { plan: 'try', next_at: 1767312000 } });
        return { session: session({ allotment: 900n }), toppedUp: false, gate: 'opened' };
      };
      const ok = await http(base, '/trial', {
        method: 'POST',
        body: '{"plan":"try","device":"0123456789abcdef0123456789abcdef"}',
      });
      assert.is(ok.status, 200, ok.text);
      assert.is(seen[0]!.mac, MAC);
      assert.is(seen[0]!.plan, 'try');
      assert.equal(seen[0]!.payment, { method: 'trial', device: '0123456789abcdef0123456789abcdef' });
      const used = await http(base, '/trial', { method: 'POST', body: '{"plan":"try"}' });
      assert.is(used.status, 403);
      assert.equal(used.json().error.code, 'ERR_TRIAL_USED');
      assert.is(used.json().error.next_at, 1767312000);
      assert.ok(
        lines.some(
          (l) => l.msg === 'http free trial refused' && l.fields.code === 'ERR_TRIAL_USED' && l.fields.mac === MAC,
        ),
      );
      assert.is(
        (await http(base, '/trial', { method: 'POST', body: '{"plan":"try"}' })).status,
        429,
        'a third attempt within the minute: rate_limit 2',
      );
      assert.is((await http(base, '/trial', { method: 'POST', body: '{"plan":7}' })).status, 429);
    } finally {
      await endpoint.close();
    }
  },
);

test(
  '/buy for a plan no running scheme offers (upto alone, ' + 'a plan without a time_limit) is a clear 501, not a 500',
  async () => {
    const { endpoint, base } = await start({ faces: [{ ...exactFace(x402Stub), offer: () => null }] });
    try {
      const r = await http(base, '/buy?plan=wifi');
      assert.is(r.status, 501, r.text);
      assert.is(r.json().error.code, 'ERR_UNKNOWN_PAYMENT_METHOD');
      assert.match(r.json().error.message, 'sells plan wifi');
    } finally {
      await endpoint.close();
    }
  },
);

test.run();
