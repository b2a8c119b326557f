// tier: fast
/**
 * POST /restore/challenge and /restore against the endpoint in this process, over a real SessionManager (memory store)
 * and a stub of the rest of the backend: a customer whose phone came back with a new MAC signs the challenge with the
 * paying wallet (viem's account, EIP-191 personal_sign) and the session moves; every refusal moves nothing.
 * Also POST /voucher: the same voucher typed on a new device moves its live session.
 */
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { SluiceBackend } from '../../src/api/index.ts';
import { HttpEndpoint } from '../../src/http/server.ts';
import { SessionManager, isLive, type Session } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { SECP256K1_HALF_N } from '../../src/x402/signature.ts';
import { loadPage } from './fake-dom.ts';

const test = suite('restore a session on a new MAC');
const RESTORE_JS = readFileSync(new URL('../../files/usr/share/sluice/portal/restore.js', import.meta.url), 'utf8');
const OLD = '02:00:00:00:0f:01';
const NEW = '02:00:00:00:0f:02';
const BUSY = '02:00:00:00:0f:03';
const MACS: Record<string, string> = { '127.0.0.1': NEW, '127.0.0.2': OLD, '127.0.0.3': BUSY };
const payer = privateKeyToAccount(generatePrivateKey());
const stranger = privateKeyToAccount(generatePrivateKey());

let now = Date.now();
let manager: SessionManager;
let endpoint: HttpEndpoint;
let purchases = 0;

function backend(): SluiceBackend {
  return {
    now: () => now,
    pricing: () => [],
    session: ({ mac }: { mac?: string }) => (mac === undefined ? undefined : (manager.byMac(mac) ?? undefined)),
    sessions: (filter: { user?: string }) => manager.list(filter),
    purchase: async () => {
      purchases++;
      throw new Error('no purchase in this test');
    },
    move: async (q: { id?: string }, to: string) => {
      const from = manager.get(q.id!)!.mac;
      const session = await manager.move(q.id!, to);
      return { session, from, gate: 'opened' as const };
    },
  } as unknown as SluiceBackend;
}

function post(path: string, body: unknown, localAddress = '127.0.0.1') {
  return new Promise<{ status: number; body: Record<string, any> }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: endpoint.port,
        path,
        method: 'POST',
        agent: false,
        localAddress,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('error', reject);
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

async function sell(
  mac: string,
  wallet: string | null,
  extra: Partial<{ user: string; method: string }> = {},
): Promise<Session> {
  const { session } = await manager.activate({
    mac,
    metric: 'bytes',
    allotment: 10_000n,
    ...(extra.user !== undefined && { user: extra.user }),
    payment: {
      method: extra.method ?? 'x402',
      reference: wallet ? `${wallet}:0x${Math.random().toString(16).slice(2).padEnd(64, '0')}` : `v-${Math.random()}`,
      amount: 10n,
      asset: 'USDC',
      at: now,
    },
  });
  return session;
}

test.before.each(async () => {
  now = Date.now();
  purchases = 0;
  manager = await SessionManager.open({ store: new MemoryStore(), clock: { now: () => now } });
  endpoint = await HttpEndpoint.start({
    host: '127.0.0.1',
    port: 0,
    rateLimitPerMinute: 10_000,
    backend: backend(),
    forms: { voucher: true },
    macOf: async (ip) => MACS[ip] ?? null,
  });
});

test.after.each(async () => {
  await endpoint.close();
  await manager.close();
});

/** The challenge's text with the wallet and the nonce left out: what every wallet is shown alike. */
function challengeText(mac: string, ip: string, expiresAt: number): string {
  return [
    'Move my WiFi session to this device.',
    '',
    'Wallet: <wallet>',
    `Device: ${mac}`,
    `Address: ${ip}`,
    'Nonce: <n>',
    `Expires: ${new Date(expiresAt).toISOString()}`,
  ].join('\n');
}

async function challenge(wallet = payer.address, from = '127.0.0.1') {
  const r = await post('/restore/challenge', { payer: wallet }, from);
  assert.is(r.status, 200, JSON.stringify(r.body));
  return r.body as { nonce: string; message: string; expires_at: number };
}

test(
  'the paying wallet signs the challenge: the live ' + 'session moves to the new MAC, usage and allotment kept',
  async () => {
    const s = await sell(OLD, payer.address);
    manager.applyUsage([s.id], [2500], 1);
    const c = await challenge();
    assert.match(c.message, NEW);
    assert.match(c.message, payer.address.toLowerCase());
    assert.match(c.message, c.nonce);
    const signature = await payer.signMessage({ message: c.message });
    const r = await post('/restore', { nonce: c.nonce, signature });
    assert.is(r.status, 200, JSON.stringify(r.body));
    assert.is(r.body.restored, true);
    assert.is(r.body.from, OLD);
    assert.is(r.body.session.id, s.id);
    assert.is(r.body.session.mac, NEW);
    assert.is(manager.byMac(NEW)!.used, 2500);
    assert.is(manager.byMac(NEW)!.allotment, 10_000n);
    assert.is(manager.byMac(OLD), null);
    // The same signed challenge again: spent.
    const again = await post('/restore', { nonce: c.nonce, signature });
    assert.is(again.status, 403);
    assert.is(again.body.error.code, 'ERR_RESTORE_CHALLENGE');
  },
);

test(
  'the challenge answers the same for every wallet (a LAN host learns nothing of who paid); which wallet has a ' +
    'session is told after its signature',
  async () => {
    const s = await sell(OLD, payer.address);
    const ended = privateKeyToAccount(generatePrivateKey());
    const e = await sell('02:00:00:00:0f:04', ended.address);
    await manager.end(e.id, 'admin');
    // A wallet with a live session, one whose session ended, one that never paid here: one answer, the same shape.
    const answers = [];
    for (const wallet of [payer, ended, stranger]) {
      const r = await post('/restore/challenge', { payer: wallet.address });
      assert.is(r.status, 200, JSON.stringify(r.body));
      assert.equal(Object.keys(r.body).sort(), ['expires_at', 'message', 'nonce']);
      assert.is(
        r.body.message.replace(wallet.address.toLowerCase(), '<wallet>').replace(/Nonce: [0-9a-f]{32}/, 'Nonce: <n>'),
        challengeText(NEW, '127.0.0.1', r.body.expires_at),
        'the message differs by the wallet named and the nonce only',
      );
      answers.push(r.body);
    }
    // The key's holder learns it after signing (nothing moved).
    let r = await post('/restore', {
      nonce: answers[2]!.nonce,
      signature: await stranger.signMessage({ message: answers[2]!.message }),
    });
    assert.is(r.status, 404);
    assert.is(r.body.error.code, 'ERR_RESTORE_NO_SESSION');
    r = await post('/restore/challenge', { payer: ended.address });
    r = await post('/restore', {
      nonce: r.body.nonce,
      signature: await ended.signMessage({ message: r.body.message }),
    });
    assert.is(r.status, 404);
    assert.is(r.body.error.code, 'ERR_RESTORE_SESSION_ENDED');
    // Another wallet's signature over the stranger's challenge is the signer's refusal, not a hint about the session.
    r = await post('/restore/challenge', { payer: stranger.address });
    r = await post('/restore', {
      nonce: r.body.nonce,
      signature: await payer.signMessage({ message: r.body.message }),
    });
    assert.is(r.body.error.code, 'ERR_RESTORE_SIGNER');
    assert.is(manager.get(s.id)!.mac, OLD, 'nothing moved');
  },
);

test('refused before a signature, whatever the wallet: a device with its own session, a bad payer', async () => {
  await sell(OLD, payer.address);
  await sell(BUSY, null);
  for (const wallet of [payer, stranger]) {
    const r = await post('/restore/challenge', { payer: wallet.address }, '127.0.0.3');
    assert.is(r.status, 409);
    assert.is(r.body.error.code, 'ERR_SESSION_MOVE_TARGET');
  }
  let r = await post('/restore/challenge', { payer: 'me' });
  assert.is(r.status, 400);
  assert.is(r.body.error.code, 'ERR_RESTORE_INVALID');
  r = await post('/restore/challenge', 'not json');
  assert.is(r.status, 400);
  assert.is(r.body.error.code, 'ERR_RESTORE_INVALID');
});

test(
  'refused after the signature, nothing moved: another wallet, a high-s twin, an expired, foreign or unknown ' +
    'challenge, a session ended meanwhile',
  async () => {
    const s = await sell(OLD, payer.address);
    const unmoved = () => assert.is(manager.get(s.id)!.mac, OLD, 'nothing moved');

    let c = await challenge();
    let r = await post('/restore', { nonce: c.nonce, signature: await stranger.signMessage({ message: c.message }) });
    assert.is(r.status, 403);
    assert.is(r.body.error.code, 'ERR_RESTORE_SIGNER');
    unmoved();

    // The malleable twin (r, n − s, v ^ 1) recovers the same signer: refused as no EIP-2 verifier would take it.
    c = await challenge();
    const sig = await payer.signMessage({ message: c.message });
    const N = SECP256K1_HALF_N * 2n + 1n;
    const high = (N - BigInt(`0x${sig.slice(66, 130)}`)).toString(16).padStart(64, '0');
    const v = parseInt(sig.slice(130), 16) === 27 ? '1c' : '1b';
    r = await post('/restore', { nonce: c.nonce, signature: `${sig.slice(0, 66)}${high}${v}` });
    assert.is(r.body.error.code, 'ERR_RESTORE_SIGNER');
    unmoved();

    c = await challenge();
    now += 5 * 60_000 + 1;
    r = await post('/restore', { nonce: c.nonce, signature: await payer.signMessage({ message: c.message }) });
    assert.is(r.status, 403);
    assert.is(r.body.error.code, 'ERR_RESTORE_EXPIRED');
    unmoved();

    // Issued to the device at 127.0.0.1, presented by another one.
    c = await challenge();
    r = await post(
      '/restore',
      { nonce: c.nonce, signature: await payer.signMessage({ message: c.message }) },
      '127.0.0.3',
    );
    assert.is(r.body.error.code, 'ERR_RESTORE_CHALLENGE');
    unmoved();

    r = await post('/restore', { nonce: '0'.repeat(32), signature: sig });
    assert.is(r.body.error.code, 'ERR_RESTORE_CHALLENGE');
    r = await post('/restore', { nonce: 'x', signature: 5 });
    assert.is(r.body.error.code, 'ERR_RESTORE_INVALID');

    c = await challenge();
    await manager.end(s.id, 'admin');
    r = await post('/restore', { nonce: c.nonce, signature: await payer.signMessage({ message: c.message }) });
    assert.is(r.status, 404);
    assert.is(r.body.error.code, 'ERR_RESTORE_SESSION_ENDED');
    assert.is(manager.byMac(NEW), null);
  },
);

test('a voucher typed again on a new device moves its live session there; nothing is bought', async () => {
  const s = await sell(OLD, null, { user: 'SUMMER-42', method: 'voucher' });
  const r = await post('/voucher', { code: 'SUMMER-42' });
  assert.is(r.status, 200, JSON.stringify(r.body));
  assert.is(r.body.restored, true);
  assert.is(r.body.session.id, s.id);
  assert.is(manager.byMac(NEW)!.id, s.id);
  assert.ok(!isLive(manager.byMac(OLD) ?? { state: 'EXPIRED' }));
  assert.is(purchases, 0);
  // What the page says: welcome back, not "paid" (nothing was bought).
  const page = await loadPage({ base: `http://127.0.0.1:${endpoint.port}`, languages: ['pt-BR'] });
  assert.is(page.portal.purchaseText(r.body), 'Bem-vindo de volta. Sua sessão está neste dispositivo novamente.');
  // Another code is a purchase (the stub refuses it), not a move.
  await post('/voucher', { code: 'OTHER' }, '127.0.0.3');
  assert.is(purchases, 1);
});

function wallet(account: typeof payer) {
  return {
    request: async ({ method, params }: { method: string; params?: unknown[] }) => {
      if (method === 'eth_requestAccounts') return [account.address];
      if (method === 'personal_sign') return account.signMessage({ message: { raw: params![0] as `0x${string}` } });
      throw new Error(`unexpected ${method}`);
    },
  };
}

test(
  'the pay page: its restore box shows only without a live session; the wallet signs, the session comes to this ' +
    'device; refusals in words',
  async () => {
    const s = await sell(OLD, payer.address);
    const base = `http://127.0.0.1:${endpoint.port}`;
    const page = await loadPage({ base, ethereum: wallet(payer), languages: ['de-DE'] });
    assert.is(page.byId('restore-section').hidden, false, 'shown: this device has no session');
    assert.is(page.byId('restore-button').textContent, 'Mit meiner Wallet wiederherstellen');
    page.byId('restore-button').dispatch('click');
    await page.restore.running;
    assert.is(manager.byMac(NEW)!.id, s.id, 'moved by the page');
    assert.is(page.byId('message').textContent, 'Willkommen zurück. Ihre Sitzung ist wieder auf diesem Gerät.');
    // Now this device has a live session: a new load shows no box.
    const again = await loadPage({ base, ethereum: wallet(payer) });
    assert.is(again.byId('restore-section').hidden, true);
    // No wallet: no box.
    await manager.end(s.id, 'admin');
    const none = await loadPage({ base });
    assert.is(none.byId('restore-section').hidden, true);
    // Another wallet: the router's refusal before any signature, in the customer's words.
    const other = await loadPage({ base, ethereum: wallet(stranger) });
    other.byId('restore-button').dispatch('click');
    await other.restore.running;
    assert.is(other.byId('restore-message').textContent, 'This wallet has no session running on this WiFi.');
  },
);

test(
  'the pay page after a restore: the welcome stays readable and the status box shows the session at once, ' +
    'without a reload',
  async () => {
    const s = await sell(OLD, payer.address);
    const base = `http://127.0.0.1:${endpoint.port}`;
    const page = await loadPage({ base, ethereum: wallet(payer) });
    assert.is(page.byId('session').hidden, true, 'no session on this device before');
    page.byId('restore-button').dispatch('click');
    await page.restore.running;
    await page.settle();
    assert.is(manager.byMac(NEW)!.id, s.id);
    // The restore box goes (this device has a live session now): what the customer reads is in the page's message.
    assert.is(page.byId('restore-section').hidden, true);
    assert.is(page.byId('message').textContent, 'Welcome back. Your session is on this device again.');
    assert.is(page.byId('message').className, 'ok');
    assert.is(page.byId('message').hidden, false);
    // Before the status box's next 30 s refresh: the session is shown now.
    assert.is(page.byId('session').hidden, false, 'the status box shows the moved session');
    assert.match(page.byId('session').textContent, /active/i);
  },
);

test('restore.js: UTF-8 hex for personal_sign, every refusal code has words in all five languages', () => {
  const sandbox: Record<string, unknown> = {};
  runInNewContext(RESTORE_JS, sandbox);
  const r = sandbox.SluiceRestore as {
    utf8Hex(s: string): string;
    refusalKey(c: string): string;
    words: Record<string, Record<string, string>>;
  };
  assert.is(r.utf8Hex('Aé\n'), '0x41c3a90a');
  const keys = Object.keys(r.words.en!).sort();
  for (const l of ['de', 'es', 'fr', 'pt']) assert.equal(Object.keys(r.words[l]!).sort(), keys, l);
  for (const code of [
    'ERR_RESTORE_NO_SESSION',
    'ERR_RESTORE_SESSION_ENDED',
    'ERR_SESSION_MOVE_TARGET',
    'ERR_RESTORE_EXPIRED',
    'ERR_RESTORE_CHALLENGE',
    'ERR_RESTORE_SIGNER',
    'ERR_X',
  ])
    assert.ok(keys.includes(r.refusalKey(code)), code);
});

test.run();
