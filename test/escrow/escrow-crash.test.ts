// tier: chain
/**
 * The escrow method's crash windows, with the real session manager, the real ledger file and a
 * facilitator over HTTP (a small stand-in here: the chain's side is test/escrow/session-chain.test.ts). A "crash" is a
 * new manager, ledger and method built from what is on disk (the ledger's file, the session store's records), nothing
 * kept from memory.
 *  - item 2: the purchase is on flash before /session/create, so a kill -9 during the call leaves what to grant; the
 *    customer's retry is granted (found on chain) or creates again (not found), never refused;
 *  - item 8 (B): the escrow session is closed only once the end record is durable, never on the `ended` event alone;
 *  - item 8 (A): at start every open ledger entry is reconciled with the sessions: ended → closed, live → kept, held by
 *    no session → closed (refunded), pending → left to the resolver.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address, Hex } from 'viem';
import { privateKeyToAccount, generatePrivateKey } from 'viem/accounts';
import { SessionManager } from '../../src/sessions/index.ts';
import type { LoadResult, SessionStore, StoreRecord } from '../../src/sessions/store.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { EndRecordsTap } from '../../src/sessions/index.ts';
import { EscrowCredit } from '../../src/payments/escrow-session/escrow-credit.ts';
import { X402SessionMethod } from '../../src/payments/escrow-session/x402-session.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import { EscrowLedger, sessionIdOf, termsNonce } from '../../src/escrow/index.ts';
import type { EscrowConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/log.ts';
import { randomNonce, signAuthorization } from '../chain/index.ts';

const test = suite('escrow crash windows');
const NET = 'eip155:84532';
const ESCROW = '0x00000000000000000000000000000000000e5c00' as Address;
const SELLER = '0x0000000000000000000000000000000000005e11' as Address;
const TOKEN = '0x000000000000000000000000000000000000fee1' as Address;
const PRICE = 50_000n;
const STEP = 1048576n;

/** The facilitator stand-in: each route answers as the test says; every request is kept, and can be awaited. */
class Facilitator {
  readonly calls: Array<{ method: string; path: string; body: Record<string, unknown> }> = [];
  /** `on` answers [status, body], or null: the request is left without an answer (a call a kill -9 cuts short). */
  on: (method: string, path: string, body: Record<string, unknown>) => [number, Record<string, unknown>] | null =
    () => [404, { success: false, error: 'not_found' }];
  private waiters: Array<{ match: (path: string) => boolean; resolve: () => void }> = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        this.calls.push({ method: req.method ?? 'GET', path, body });
        const answer = this.on(req.method ?? 'GET', path, body);
        if (answer) res.writeHead(answer[0], { 'content-type': 'application/json' }).end(JSON.stringify(answer[1]));
        for (const w of this.waiters.filter((x) => x.match(path))) {
          w.resolve();
        }
        this.waiters = this.waiters.filter((x) => !x.match(path));
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves at the next request to `path`, answered or not. */
  next(path: string): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ match: (p) => p.startsWith(path), resolve }));
  }

  count(path: string): number {
    return this.calls.filter((c) => c.path.startsWith(path)).length;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A session store whose end records can be held back: written to the inner store only when released. */
class HeldEndsStore implements SessionStore {
  holdEnds = false;
  private held: Array<() => void> = [];
  constructor(readonly inner: MemoryStore) {}
  load(): Promise<LoadResult> {
    return this.inner.load();
  }
  async append(records: readonly StoreRecord[]): Promise<void> {
    if (this.holdEnds && records.some((r) => r.t === 'end')) await new Promise<void>((r) => this.held.push(r));
    await this.inner.append(records);
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
  compact(now: number): Promise<void> {
    return this.inner.compact(now);
  }
  async close(): Promise<void> {
    this.release();
  }
}

let fac: Facilitator;
let dir: string;
const config = (): EscrowConfig => ({
  enabled: true,
  facilitatorUrl: fac.url,
  network: NET,
  chainId: 84532,
  address: ESCROW.toLowerCase(),
  seller: SELLER.toLowerCase(),
  creditSteps: 1,
  closeGraceMs: 0,
});
const gate = { hold: async () => false, release: async () => false };

test.before.each(async () => {
  fac = new Facilitator();
  await fac.start();
  dir = mkdtempSync(join(tmpdir(), 'sluice-escrow-crash-'));
});
test.after.each(async () => {
  await fac.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The daemon's escrow wiring over `store` (recovered): sessions, the end-records tap, the ledger on disk, the credit.
 */
async function boot(store: SessionStore) {
  const tap = new EndRecordsTap(store);
  const sessions = new SessionManager({ store: tap });
  await sessions.recover();
  const ledger = await EscrowLedger.open(dir);
  const credit = new EscrowCredit({
    config: config(),
    ledger,
    sessions,
    gate,
    stepSizeOf: () => STEP,
    endsWritten: tap,
    log: silentLogger,
  });
  return { sessions, ledger, credit };
}

const ledgerOnDisk = (): Array<Record<string, any>> =>
  JSON.parse(readFileSync(join(dir, 'escrow.json'), 'utf8')) as Array<Record<string, any>>;
const idOf = (n: number): Hex => `0x${n.toString(16).padStart(64, '0')}`;
const BUYER = '0x00000000000000000000000000000000000b0e00' as Address;

/** A sold escrow session: the ledger entry (as a granted purchase leaves it) and the session holding its id. */
async function sold(b: Awaited<ReturnType<typeof boot>>, n: number, mac: string) {
  const id = idOf(n);
  await b.ledger.record({
    sessionId: id,
    mac,
    buyer: BUYER,
    maxUnits: 4n,
    escrow: ESCROW.toLowerCase(),
    network: NET,
    chainId: 84532,
  });
  const { session } = await b.sessions.activate({
    mac,
    metric: 'bytes',
    allotment: 4n * STEP,
    plan: 'wifi',
    payment: { method: 'x402-session', reference: id, amount: 4n * PRICE, asset: TOKEN, at: Date.now(), steps: 4n },
  });
  return { id, session };
}

const closeAnswer = (): [number, Record<string, unknown>] => [
  200,
  { success: true, transaction: `0x${'c'.repeat(64)}`, sellerAmount: '0', buyerRefund: String(4n * PRICE) },
];

test(
  'an end not yet on flash does not close the escrow session: after a crash there the session is ACTIVE and its ' +
    'escrow open',
  async () => {
    const store = new HeldEndsStore(new MemoryStore());
    const b = await boot(store);
    const { id, session } = await sold(b, 1, '02:00:00:00:0a:01');
    store.holdEnds = true;
    assert.ok(b.sessions.endNow(session.id, 'admin'), 'ended in memory (its gate closes), the end record not on flash');
    // Any ledger write after the `ended` event carries everything the ledger knew by then (writes are serialised).
    await b.ledger.record({ sessionId: idOf(99), mac: '02:00:00:00:0a:63', buyer: BUYER, maxUnits: 1n });
    assert.is(
      ledgerOnDisk().find((e) => e.sessionId === id)?.endedAt,
      undefined,
      'not marked ended before the end is durable',
    );
    assert.is(fac.count('/session/close'), 0);
    // kill -9 now: the journal never got the end record.
    const again = await boot(store.inner);
    assert.is(again.sessions.get(session.id)?.state, 'ACTIVE', 'the session comes back ACTIVE');
    await again.credit.reconcile();
    assert.is(again.ledger.get(id)?.endedAt, undefined, 'a live session keeps its escrow open');
    assert.ok(
      again.ledger.dueToClose(Number.MAX_SAFE_INTEGER, 0).every((e) => e.sessionId !== id),
      'nothing to close',
    );
    store.release();
  },
);

test('once the end record is durable the escrow session is marked ended (on disk) and closed', async () => {
  fac.on = (method, path) =>
    path === '/session/close' ? closeAnswer() : [404, { success: false, error: 'not_found' }];
  const store = new HeldEndsStore(new MemoryStore());
  const b = await boot(store);
  const { id, session } = await sold(b, 2, '02:00:00:00:0a:02');
  store.holdEnds = true;
  b.sessions.endNow(session.id, 'admin');
  const closing = fac.next('/session/close');
  store.release();
  await closing;
  await b.credit.method.closeDue();
  assert.is(
    typeof ledgerOnDisk().find((e) => e.sessionId === id)?.endedAt,
    'number',
    'ended on disk before the close was sent',
  );
  assert.equal(fac.calls.find((c) => c.path === '/session/close')?.body.sessionId, id);
  b.credit.stop();
});

test(
  'at start every open ledger entry is reconciled with the sessions: ended there → closed; live → kept; held by ' +
    'none → closed; pending → left to the resolver',
  async () => {
    fac.on = (method, path) =>
      path === '/session/close' ? closeAnswer() : [404, { success: false, error: 'session_not_found' }];
    const store = new MemoryStore();
    const b = await boot(store);
    // The end on flash, the ledger's mark lost (the crash between the two writes): EscrowCredit is not told here.
    const ended = await sold(b, 3, '02:00:00:00:0a:03');
    const live = await sold(b, 4, '02:00:00:00:0a:04');
    await b.ledger.record({ sessionId: idOf(5), mac: '02:00:00:00:0a:05', buyer: BUYER, maxUnits: 4n });
    const validBefore = String(Math.floor(Date.now() / 1000) + 300);
    await b.ledger.record({
      sessionId: idOf(6),
      mac: '02:00:00:00:0a:06',
      buyer: BUYER,
      maxUnits: 4n,
      pending: {
        plan: 'wifi',
        metric: 'bytes',
        allotment: String(4n * STEP),
        steps: '4',
        amount: String(4n * PRICE),
        asset: TOKEN,
        at: Date.now(),
        validBefore,
      },
    });
    await store.append([
      { t: 'end', id: ended.session.id, state: 'TERMINATED', cause: 'admin', at: Date.now(), used: 0, bytes: 0 },
    ]);

    const again = await boot(store);
    assert.is(again.sessions.get(ended.session.id)?.state, 'TERMINATED');
    await again.credit.reconcile();
    assert.is(typeof again.ledger.get(ended.id)?.endedAt, 'number', 'ended in the journal → due to close');
    assert.is(again.ledger.get(live.id)?.endedAt, undefined, 'live → kept');
    assert.is(typeof again.ledger.get(idOf(5))?.endedAt, 'number', 'held by no session → closed (refund)');
    assert.is(again.ledger.get(idOf(6))?.endedAt, undefined, 'pending → the resolver asks');
    assert.ok(again.ledger.get(idOf(6))?.pending);
    again.credit.start();
    await again.credit.method.closeDue();
    assert.equal(
      fac.calls
        .filter((c) => c.path === '/session/close')
        .map((c) => c.body.sessionId)
        .sort(),
      [ended.id, idOf(5)].sort(),
    );
    again.credit.stop();
  },
);

/** A deposit as a wallet sends it, and the purchase context the merchant builds for it. */
async function depositContext(mac: string): Promise<{ ctx: PaymentContext; id: Hex; buyer: Address }> {
  const buyer = privateKeyToAccount(generatePrivateKey());
  const maxUnits = 4n;
  const terms = { seller: SELLER, pricePerUnit: PRICE, maxUnits, duration: 3600n, salt: randomNonce() };
  const nonce = termsNonce(ESCROW, terms);
  const { authorization, signature } = await signAuthorization(
    buyer,
    { address: TOKEN, name: 'USDC', version: '2', chainId: 84532 },
    { to: ESCROW, value: PRICE * maxUnits, nonce, primaryType: 'ReceiveWithAuthorization' },
  );
  const payload = {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: NET,
      amount: String(PRICE * maxUnits),
      asset: TOKEN,
      payTo: ESCROW,
      maxTimeoutSeconds: 300,
      extra: { name: 'USDC', version: '2' },
    },
    payload: { signature, authorization },
    extensions: {
      session: {
        type: 'prepaid',
        pricePerUnit: String(PRICE),
        maxUnits: String(maxUnits),
        duration: '3600',
        seller: SELLER,
        salt: terms.salt,
      },
    },
  };
  const quote = {
    plan: 'wifi',
    metric: 'bytes' as const,
    steps: maxUnits,
    allotment: maxUnits * STEP,
    price: maxUnits * PRICE,
    asset: TOKEN.toLowerCase(),
    currency: 'USDC',
    decimals: 6,
    stepSize: STEP,
    pricePerStep: PRICE,
  };
  return {
    ctx: { quote, request: { mac, payment: { method: 'x402-session', payload } }, now: Date.now() },
    id: sessionIdOf(TOKEN, buyer.address, nonce),
    buyer: buyer.address,
  };
}

const view = (id: Hex, buyer: Address): [number, Record<string, unknown>] => [
  200,
  {
    success: true,
    session: {
      sessionId: id,
      buyer,
      seller: SELLER,
      totalDeposit: String(4n * PRICE),
      consumedAmount: '0',
      remainingAmount: String(4n * PRICE),
      unitsUsed: '0',
      remainingUnits: '4',
      expiresAt: '9999999999',
      status: 'active',
    },
  },
];

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

test(
  'kill -9 during /session/create, the deposit landed: the purchase was on flash before the call, and the ' +
    "customer's retry is granted (no second create)",
  async () => {
    const { ctx, id, buyer } = await depositContext('02:00:00:00:0a:07');
    fac.on = (method, path) =>
      path === '/session/create' ? null : [404, { success: false, error: 'session_not_found' }];
    const ledger = await EscrowLedger.open(dir);
    const method = new X402SessionMethod(config(), { ledger, timeoutMs: 60_000 });
    const createSent = fac.next('/session/create');
    void method.authorize(ctx).catch(() => undefined);
    await createSent;
    // The create is at the facilitator (which goes on to move the deposit); the process dies now.
    const entry = ledgerOnDisk().find((e) => e.sessionId === id);
    assert.ok(entry?.pending, 'what to grant is on flash before the create left');
    assert.is(entry.pending.allotment, String(4n * STEP));

    fac.on = (m, path) =>
      path.startsWith(`/session/${encodeURIComponent(NET)}/`)
        ? view(id, buyer)
        : [400, { success: false, error: 'session_exists' }];
    const restarted = new X402SessionMethod(config(), { ledger: await EscrowLedger.open(dir) });
    const creates = fac.count('/session/create');
    const ref = await restarted.authorize({ ...ctx, now: Date.now() });
    assert.is(ref.reference, id, 'the retry is granted');
    assert.is(fac.count('/session/create'), creates, 'found on chain: no second create');
  },
);

test(
  "kill -9 during /session/create, the deposit never landed: the customer's retry sends the create again and is " +
    'granted',
  async () => {
    const { ctx, id, buyer } = await depositContext('02:00:00:00:0a:08');
    fac.on = () => null;
    const ledger = await EscrowLedger.open(dir);
    const createSent = fac.next('/session/create');
    void new X402SessionMethod(config(), { ledger, timeoutMs: 60_000 }).authorize(ctx).catch(() => undefined);
    await createSent;
    let created = false;
    fac.on = (method, path) => {
      if (path === '/session/create') {
        created = true;
        return [200, { success: true, sessionId: id, transaction: `0x${'a'.repeat(64)}` }];
      }
      return created ? view(id, buyer) : [404, { success: false, error: 'session_not_found' }];
    };
    const restarted = new X402SessionMethod(config(), { ledger: await EscrowLedger.open(dir) });
    const ref = await restarted.authorize({ ...ctx, now: Date.now() });
    assert.is(ref.reference, id);
    assert.ok(created, 'not found on chain: created now (the deposit can move only once)');
    // A refusal of that second create (say the first one landed meanwhile) leaves the purchase pending, not forgotten.
    const other = await depositContext('02:00:00:00:0a:09');
    fac.on = (method, path) =>
      path === '/session/create' ? null : [404, { success: false, error: 'session_not_found' }];
    const sent = fac.next('/session/create');
    void new X402SessionMethod(config(), { ledger: await EscrowLedger.open(dir), timeoutMs: 60_000 })
      .authorize(other.ctx)
      .catch(() => undefined);
    await sent;
    fac.on = (method, path) =>
      path === '/session/create'
        ? [400, { success: false, error: 'session_exists' }]
        : [404, { success: false, error: 'session_not_found' }];
    const third = new X402SessionMethod(config(), { ledger: await EscrowLedger.open(dir) });
    assert.is(await codeOf(third.authorize({ ...other.ctx, now: Date.now() })), 'ERR_ESCROW_CREATE_REFUSED');
    assert.ok(
      ledgerOnDisk().find((e) => e.sessionId === other.id)?.pending,
      'still pending: the resolver keeps asking until validBefore',
    );
  },
);

test.run();
