// tier: daemon
/**
 * TollGate conformance: each real client replayed exactly as docs/tollgate.md ("Which clients
 * work") describes it, against the real daemon (DaemonLab) with TollGate's door on and the lab Cashu mint
 * (test/peers/cashu-mint.ts; the customers' tokens are funded through a cashu-ts Wallet):
 *   - the Android app ("v1" path): GET / must be 200 with kind 10021, POST / text/plain with a pasted token, success is
 *     kind 1022; /whoami for display, /balance every few seconds;
 *   - TollGate's portal: GET /whoami, then POST / application/json with a signed kind 21000 (p = the router's key,
 *     device-identifier, payment); success is response.ok;
 *   - the reseller: the 10021's signature checked with a verifier written from BIP-340 (test/helpers/bip340-verify.ts,
 *     not noble), price_per_step of ≥ 6 elements, polls /usage and pays on -1/-1, success = 200 + kind 1022 +
 *     allotment > 0, renews before the end (the renewal offset reached).
 * Also: a spent token and another mint's token refused with TollGate's codes, the same key after a restart, `-1/-1`
 * only for a device known to have no session (an error when the MAC lookup fails), the CORS preflight.
 * Each device is its own loopback source address (127.0.0.x), listed by the portal stand-in with its MAC.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { startCashuMint, type CashuMint } from '../peers/cashu-mint.ts';
import { bip340Verify } from '../helpers/bip340-verify.ts';
import { signEvent, verifyEvent, type NostrEvent } from '../../src/payments/cashu/nostr/event.ts';

const test = suite('TollGate clients against the real daemon and the lab mint');

const ANDROID = { ip: '127.0.0.2', mac: '02:00:00:00:39:02' };
const PORTAL = { ip: '127.0.0.3', mac: '02:00:00:00:39:03' };
const RESELLER = { ip: '127.0.0.4', mac: '02:00:00:00:39:04' };
const IDLE = { ip: '127.0.0.5', mac: '02:00:00:00:39:05' };
const SPENDER = { ip: '127.0.0.6', mac: '02:00:00:00:39:06' };
/** Two portal clients share this address: which device asks is unknown. */
const SHARED_IP = '127.0.0.7';
/** No portal client has this address. */
const STRANGER_IP = '127.0.0.9';
const PRICE = 21;
const STEP_MS = 60_000;
/** The Android app's purchase: long enough to outlive the restart test at the end on a loaded machine. */
const ANDROID_STEPS = 30;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

let lab: DaemonLab;
let mint: CashuMint;
let otherMint: CashuMint;
let port = 0;

/** One HTTP exchange from `from` (the device's address) to the door, with exactly these headers and body. */
function http(
  from: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent: false,
        host: '127.0.0.1',
        port,
        method,
        path,
        localAddress: from,
        headers: { ...headers, ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }) },
      },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (d) => (text += d))
          .on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const event = (a: Answer): NostrEvent => JSON.parse(a.text) as NostrEvent;
const tag = (e: NostrEvent, name: string): string[] | undefined => e.tags.find((t) => t[0] === name);

test.before(async () => {
  mint = await startCashuMint();
  otherMint = await startCashuMint();
  port = await freePort();
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: `
config tollgate 'tollgate'
\toption enabled '1'
\toption listen '127.0.0.1:${port}'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption unit 'sat'
\toption price_per_step '${PRICE}'
\toption min_steps '1'
`,
  });
  for (const d of [ANDROID, PORTAL, RESELLER, IDLE, SPENDER]) lab.portal.addClient(d.mac, d.ip);
  lab.portal.addClient('02:00:00:00:39:07', SHARED_IP);
  lab.portal.addClient('02:00:00:00:39:08', SHARED_IP);
  await lab.startDaemon();
  assert.match(lab.output, 'TollGate door listening');
});

test.after(async () => {
  await lab?.close();
  await mint?.stop();
  await otherMint?.stop();
});

test(
  'the Android app: GET / is 200 with kind 10021; a pasted token POSTed as text/plain buys a session (kind ' +
    '1022); /whoami and /balance as it reads them',
  async () => {
    const advert = await http(ANDROID.ip, 'GET', '/');
    assert.is(advert.status, 200);
    const ad = event(advert);
    assert.is(ad.kind, 10021);
    // The app takes the last price_per_step's price and unit, and every tag's mint.
    const prices = ad.tags.filter((t) => t[0] === 'price_per_step');
    assert.equal(prices.at(-1)!.slice(2, 4), [String(PRICE), 'sat']);
    assert.equal(
      prices.map((t) => t[4]),
      [mint.url],
    );

    const token = await mint.fundToken(ANDROID_STEPS * PRICE);
    const paid = await http(ANDROID.ip, 'POST', '/', { 'content-type': 'text/plain' }, token);
    assert.is(paid.status, 200, paid.text);
    const s = event(paid);
    assert.is(s.kind, 1022);
    assert.equal(tag(s, 'device-identifier'), ['device-identifier', 'mac', ANDROID.mac]);
    assert.equal(tag(s, 'allotment'), ['allotment', String(ANDROID_STEPS * STEP_MS)]);
    assert.equal(tag(s, 'metric'), ['metric', 'milliseconds']);
    assert.ok(verifyEvent(s));

    const whoami = await http(ANDROID.ip, 'GET', '/whoami');
    assert.is(whoami.status, 200);
    assert.is(whoami.text, `mac=${ANDROID.mac}`);
    const balance = await http(ANDROID.ip, 'GET', '/balance');
    assert.is(balance.status, 200);
    const b = JSON.parse(balance.text) as Record<string, unknown>;
    assert.equal(Object.keys(b), [
      'status',
      'session_active',
      'metric',
      'usage',
      'allotment',
      'remaining',
      'start_time',
    ]);
    assert.is(b.session_active, true);
    assert.is(b.metric, 'milliseconds');
    assert.is(b.allotment, ANDROID_STEPS * STEP_MS);
    assert.is((b.usage as number) + (b.remaining as number), ANDROID_STEPS * STEP_MS);
    assert.is(b.start_time, Number(tag(s, 'start-time')![1]));
    // An ordinary sluice session: ubus sees it like any.
    const viaUbus = await lab.session(ANDROID.mac);
    assert.is(viaUbus.state, 'ACTIVE');
    assert.is((viaUbus.payments as Array<{ method: string }>)[0]!.method, 'cashu');
  },
);

test(
  "TollGate's portal: /whoami, then a signed kind 21000 (p, device-identifier, payment) as application/json; " +
    'response.ok, and the 1022 names its pubkey',
  async () => {
    const routerKey = event(await http(PORTAL.ip, 'GET', '/')).pubkey;
    const mac = (await http(PORTAL.ip, 'GET', '/whoami')).text.replace(/^mac=/, '');
    assert.is(mac, PORTAL.mac);
    const token = await mint.fundToken(2 * PRICE);
    const payment = signEvent(
      {
        kind: 21000,
        created_at: Math.floor(Date.now() / 1000),
        content: '',
        tags: [
          ['p', routerKey],
          ['device-identifier', 'mac', mac],
          ['payment', token],
        ],
      },
      Uint8Array.from(randomBytes(32)),
    );
    const paid = await http(PORTAL.ip, 'POST', '/', { 'content-type': 'application/json' }, JSON.stringify(payment));
    assert.ok(paid.status >= 200 && paid.status < 300, paid.text);
    const s = event(paid);
    assert.is(s.kind, 1022);
    assert.equal(tag(s, 'p'), ['p', payment.pubkey]);
    assert.equal(tag(s, 'allotment'), ['allotment', String(2 * STEP_MS)]);
  },
);

test(
  'the reseller: checks the 10021 signature with its own verifier, pays on -1/-1, takes 200 + 1022 + allotment > ' +
    '0, renews before the end with a cumulative allotment',
  async () => {
    const ad = event(await http(RESELLER.ip, 'GET', '/'));
    assert.ok(
      bip340Verify(ad.pubkey, ad.id, ad.sig),
      'the advertisement verifies with an independent BIP-340 verifier',
    );
    assert.ok(tag(ad, 'metric')?.[1] && tag(ad, 'step_size')?.[1], 'metric and step_size non-empty');
    const offer = ad.tags.find((t) => t[0] === 'price_per_step' && t.length >= 6 && t[4] === mint.url)!;
    assert.ok(offer, 'a price_per_step of ≥ 6 elements for the mint it holds');
    const [, , price, unit, mintUrl, minSteps] = offer;
    assert.is(unit, 'sat');
    const stepSize = Number(tag(ad, 'step_size')![1]);
    const steps = Math.max(2, Number(minSteps));

    // Its usage tracker polls /usage: -1/-1 (no session) starts the first payment.
    const before = await http(RESELLER.ip, 'GET', '/usage');
    assert.is(before.status, 200);
    assert.is(before.text, '-1/-1');
    const pay = async (): Promise<NostrEvent> => {
      const token = await mint.fundToken(steps * Number(price));
      assert.is(mintUrl, mint.url);
      const paid = await http(RESELLER.ip, 'POST', '/', { 'content-type': 'text/plain' }, token);
      assert.is(paid.status, 200, paid.text);
      const s = event(paid);
      assert.is(s.kind, 1022);
      assert.ok(Number(tag(s, 'allotment')![1]) > 0);
      return s;
    };
    const first = await pay();
    assert.is(tag(first, 'allotment')![1], String(steps * stepSize));

    const usage = await http(RESELLER.ip, 'GET', '/usage');
    const m = /^(\d+)\/(\d+)$/.exec(usage.text);
    assert.ok(m, `integer used/allotment, got ${usage.text}`);
    assert.is(Number(m![2]), steps * stepSize);
    // Renewal: remaining ≤ the renewal offset (here a whole purchase's worth) → pay again before the end.
    const remaining = Number(m![2]) - Number(m![1]);
    assert.ok(remaining <= steps * stepSize);
    const session = await lab.session(RESELLER.mac);
    const second = await pay();
    assert.is(tag(second, 'allotment')![1], String(2 * steps * stepSize), 'the 1022 reports the cumulative allotment');
    const renewed = await lab.session(RESELLER.mac);
    assert.is(renewed.id, session.id, 'a top-up of the same session');
    assert.is(
      Number(renewed.expires_at) - Number(session.expires_at),
      (steps * stepSize) / 1000,
      'ends exactly the paid steps later',
    );
    assert.match((await http(RESELLER.ip, 'GET', '/usage')).text, new RegExp(`^\\d+/${2 * steps * stepSize}$`));
  },
);

test(
  "a spent token is refused with a signed 21023 payment-error-token-spent; another mint's with " +
    'payment-error-mint-not-accepted; neither buys anything',
  async () => {
    const token = await mint.fundToken(PRICE);
    assert.is((await http(SPENDER.ip, 'POST', '/', { 'content-type': 'text/plain' }, token)).status, 200);
    const again = await http(SPENDER.ip, 'POST', '/', { 'content-type': 'text/plain' }, token);
    assert.ok(again.status >= 400 && again.status < 500, `${again.status} ${again.text}`);
    const n = event(again);
    assert.is(n.kind, 21023);
    assert.equal(tag(n, 'code'), ['code', 'payment-error-token-spent']);
    assert.equal(tag(n, 'level'), ['level', 'error']);
    assert.ok(verifyEvent(n));

    const foreign = await otherMint.fundToken(PRICE);
    const refused = await http(IDLE.ip, 'POST', '/', {}, foreign);
    assert.ok(refused.status >= 400 && refused.status < 500, `${refused.status} ${refused.text}`);
    assert.equal(tag(event(refused), 'code'), ['code', 'payment-error-mint-not-accepted']);
    assert.is((await http(IDLE.ip, 'GET', '/usage')).text, '-1/-1', 'nothing was bought');
    assert.is(otherMint.calls('POST /v1/swap'), 0, 'refused before anything moved');
    // The log (debug level in the lab) names who and why, never the bearer value.
    for (const t of [token, foreign])
      assert.not.ok(
        lab.output.includes(t.slice(0, 40)) || lab.output.includes(t.slice(-40)),
        'a token reached the log',
      );
  },
);

test("any Content-Type a client sends: none, and the spec's own curl -d (form-encoded) both buy", async () => {
  const device = { ip: '127.0.0.10', mac: '02:00:00:00:39:0a' };
  lab.portal.addClient(device.mac, device.ip);
  const none = await http(device.ip, 'POST', '/', {}, await mint.fundToken(PRICE));
  assert.is(none.status, 200, none.text);
  const form = await http(
    device.ip,
    'POST',
    '/',
    { 'content-type': 'application/x-www-form-urlencoded' },
    await mint.fundToken(PRICE),
  );
  assert.is(form.status, 200, form.text);
  assert.equal(tag(event(form), 'allotment'), ['allotment', String(2 * STEP_MS)]);
  const junk = await http(device.ip, 'POST', '/', { 'content-type': 'text/plain' }, 'not a token');
  assert.is(junk.status, 400);
  assert.equal(tag(event(junk), 'code'), ['code', 'payment-error-invalid-token']);
});

test(
  '-1/-1 only for a device sluice knows has no session; ' + 'a failed MAC lookup is an error answer, never -1/-1',
  async () => {
    assert.is((await http(IDLE.ip, 'GET', '/usage')).text, '-1/-1');
    for (const ip of [STRANGER_IP, SHARED_IP]) {
      const usage = await http(ip, 'GET', '/usage');
      assert.ok(usage.status >= 400, `${ip}: ${usage.status} ${usage.text}`);
      assert.is.not(usage.text, '-1/-1');
      assert.equal(tag(event(usage), 'code'), ['code', 'mac-address-lookup-failed']);
      const whoami = await http(ip, 'GET', '/whoami');
      assert.ok(whoami.status >= 400);
      // Nor may it pay: the token is refused before the swap, so it stays the customer's.
      const swapsBefore = mint.calls('POST /v1/swap');
      const paid = await http(ip, 'POST', '/', { 'content-type': 'text/plain' }, await mint.fundToken(PRICE));
      assert.ok(paid.status >= 400);
      assert.equal(tag(event(paid), 'code'), ['code', 'mac-address-lookup-failed']);
      assert.is(mint.calls('POST /v1/swap'), swapsBefore);
    }
  },
);

test(
  'a slow mint: the answer is a pending 21023 (payment-processing-timeout), /usage is not -1/-1 meanwhile, and ' +
    'shows the session once the swap lands',
  async () => {
    const device = { ip: '127.0.0.11', mac: '02:00:00:00:39:0b' };
    lab.portal.addClient(device.mac, device.ip);
    const token = await mint.fundToken(2 * PRICE);
    const held = mint.fault('POST /v1/swap', 'hold', { times: 1 });
    const answer = await http(device.ip, 'POST', '/', { 'content-type': 'text/plain' }, token);
    assert.is(answer.status, 504, answer.text);
    const n = event(answer);
    assert.is(n.kind, 21023);
    assert.equal(tag(n, 'code'), ['code', 'payment-processing-timeout']);
    assert.match(n.content, /pending/);
    // The reseller would pay again on -1/-1: while the outcome is open it is told so, not -1/-1.
    const meanwhile = await http(device.ip, 'GET', '/usage');
    assert.is.not(meanwhile.text, '-1/-1');
    assert.equal(tag(event(meanwhile), 'code'), ['code', 'payment-processing-timeout']);
    await held.release();
    await lab.waitFor(
      async () => /^\d+\/\d+$/.test((await http(device.ip, 'GET', '/usage')).text),
      60_000,
      'the late session on /usage',
    );
    assert.match((await http(device.ip, 'GET', '/usage')).text, new RegExp(`^\\d+/${2 * STEP_MS}$`));
  },
);

test(
  'payment attempts past http.rate_limit (30 a minute) from one address: 429 with a signed notice and ' +
    'Retry-After; another device still pays',
  async () => {
    const flooder = '127.0.0.12';
    // The bucket refills one attempt every 2 s: on a loaded machine 31 attempts may span more, so attempts go on until
    // the first 429 (it comes while they are faster than the refill); the burst of 30 is never limited.
    const answers: Answer[] = [];
    while (answers.length < 300 && answers.at(-1)?.status !== 429) {
      answers.push(await http(flooder, 'POST', '/', { 'content-type': 'text/plain' }, 'cashuBnot-a-token!'));
    }
    assert.ok(
      answers.length > 30 && answers.slice(0, -1).every((a) => a.status === 400),
      answers.map((a) => a.status).join(','),
    );
    const limited = answers.at(-1)!;
    assert.is(limited.status, 429);
    assert.is(limited.headers['retry-after'], '10');
    assert.ok(verifyEvent(event(limited)));
    assert.is(event(limited).kind, 21023);
    assert.is((await http(IDLE.ip, 'GET', '/usage')).status, 200, 'other addresses are not limited');
  },
);

test(
  'CORS: a page of the router on another port gets its preflight (POST, Content-Type) and its answers; another ' +
    'origin is not allowed',
  async () => {
    const origin = 'http://127.0.0.1:8080';
    const pre = await http(ANDROID.ip, 'OPTIONS', '/', {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    });
    assert.ok(pre.status === 204 || pre.status === 200, String(pre.status));
    assert.is(pre.headers['access-control-allow-origin'], origin);
    assert.match(String(pre.headers['access-control-allow-methods']), /\bPOST\b/);
    assert.match(String(pre.headers['access-control-allow-headers']).toLowerCase(), /content-type/);
    for (const path of ['/', '/whoami', '/usage', '/balance']) {
      assert.is((await http(ANDROID.ip, 'GET', path, { origin })).headers['access-control-allow-origin'], origin, path);
    }
    const evil = await http(ANDROID.ip, 'GET', '/whoami', { origin: 'http://evil.example' });
    assert.is(evil.headers['access-control-allow-origin'], undefined);
  },
);

test('a client polling the door keeps one connection: GET / and /usage answer without closing it', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string) =>
    new Promise<{ status: number; reused: boolean; connection: string | undefined }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, localAddress: IDLE.ip, agent }, (res) => {
        res
          .resume()
          .on('end', () =>
            resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, connection: res.headers.connection }),
          );
      });
      req.on('error', reject).end();
    });
  try {
    const answers = [await get('/'), await get('/'), await get('/usage'), await get('/nothing')];
    assert.equal(
      answers.map((a) => [a.status, a.reused, a.connection]),
      [
        [200, false, 'keep-alive'],
        [200, true, 'keep-alive'],
        [200, true, 'keep-alive'],
        [404, true, 'keep-alive'],
      ],
    );
  } finally {
    agent.destroy();
  }
});

test('a body past 64 KiB: 413 with a 21023; the connection serves the next request (the rest is none)', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const call = (method: string, body?: string) =>
    new Promise<{ status: number; reused: boolean; text: string }>((resolve, reject) => {
      const headers = body === undefined ? {} : { 'content-type': 'text/plain', 'content-length': String(body.length) };
      const req = request(
        { host: '127.0.0.1', port, method, path: '/', localAddress: SPENDER.ip, agent, headers },
        (res) => {
          let text = '';
          res
            .setEncoding('utf8')
            .on('data', (d) => (text += d))
            .on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, text }));
        },
      );
      req.on('error', reject).end(body);
    });
  try {
    const big = await call('POST', 'cashuB' + 'A'.repeat(70 * 1024));
    assert.is(big.status, 413);
    assert.is(event({ status: 413, headers: {}, text: big.text }).kind, 21023);
    const next = await call('GET');
    assert.equal(
      [next.status, next.reused, event({ status: 200, headers: {}, text: next.text }).kind],
      [200, true, 10021],
    );
  } finally {
    agent.destroy();
  }
});

test(
  'the same key after a restart: the 10021 is signed by the same pubkey, and the session bought before is still ' +
    'there',
  async () => {
    const before = event(await http(IDLE.ip, 'GET', '/'));
    await lab.stopDaemon();
    await lab.startDaemon();
    const after = event(await http(IDLE.ip, 'GET', '/'));
    assert.is(after.pubkey, before.pubkey);
    assert.ok(bip340Verify(after.pubkey, after.id, after.sig));
    assert.match((await http(ANDROID.ip, 'GET', '/usage')).text, new RegExp(`^\\d+/${ANDROID_STEPS * STEP_MS}$`));
  },
);

test('its port held by another program at start: the door opens on its own once the port is free', async () => {
  const before = event(await http(IDLE.ip, 'GET', '/'));
  await lab.stopDaemon();
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(port, '127.0.0.1', r));
  try {
    await lab.startDaemon();
    assert.match(lab.output, /TollGate door not started: tried again until it binds.*ERR_HTTP_LISTEN/);
  } finally {
    await new Promise<void>((r) => holder.close(() => r()));
  }
  let answer: Answer | undefined;
  await lab.waitFor(
    async () => (answer = await http(IDLE.ip, 'GET', '/').catch(() => undefined)) !== undefined,
    30_000,
    'the door bound once its port was free',
  );
  assert.is(event(answer!).pubkey, before.pubkey);
  assert.match(lab.output, /TollGate door listening/);
  assert.is(lab.output.match(/TollGate door not started/g)?.length, 1, 'said once, not at every try');
});

test.run();
