// tier: fast
/**
 * `upto` without a chain: the payload's syntax, the table on flash, and the sessions' side — an upto-paid session is
 * settled what it used only once its end record is on flash, once; a top-up's authorizations share the usage (never
 * the same usage twice); at start an authorization whose session ended while sluice was down is settled, one no
 * session holds is released, a live one is kept. The facilitator is a recording fetch (the chain test moves money).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { UptoStore, parseUptoPayment, type UptoRecord } from '../../src/x402/index.ts';
import { UPTO_STORE_FILE } from '../../src/x402/upto-store.ts';
import { UptoMethod } from '../../src/payments/upto/x402-upto.ts';
import { UptoEnds, allocateUsage } from '../../src/payments/upto/x402-upto-ends.ts';
import type { Session } from '../../src/sessions/index.ts';
import type { Log } from '../../src/log.ts';
import { SluiceError } from '../../src/errors.ts';
import { removeTempDir } from '../helpers/temp.ts';
import { JsonPeer } from '../peers/json-peer.ts';

const test = suite('upto: payload, table, session ends');
const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Log;
const ADDR = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
let dir: string;

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-upto-ends-'));
});
/** The sweeps the test's set-ups made, stopped as it ends: a sweep's next pass would come after the file ended. */
const sweeps: UptoEnds[] = [];
const facilitators: JsonPeer[] = [];
test.after.each(async () => {
  for (const ends of sweeps.splice(0)) await ends.background.stop();
  for (const f of facilitators.splice(0)) await f.close();
  removeTempDir(dir);
});

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, SluiceError);
    return (err as SluiceError).code;
  }
  return assert.unreachable('expected a refusal') as never;
}

test('allocateUsage: in payment order, each at most its capacity, the last takes the rest', () => {
  assert.equal(allocateUsage(150n, [600n]), [150n]);
  assert.equal(allocateUsage(900n, [600n, 600n]), [600n, 300n]);
  assert.equal(allocateUsage(300n, [600n, 600n]), [300n, 0n]);
  assert.equal(
    allocateUsage(1500n, [600n, 600n]),
    [600n, 900n],
    'the overshoot goes to the last (its settle caps it at its ceiling)',
  );
  assert.equal(allocateUsage(0n, [600n, 600n]), [0n, 0n]);
});

test('parseUptoPayment refuses what is not an x402 v2 upto Permit2 payload', () => {
  const auth = {
    from: ADDR(1),
    permitted: { token: ADDR(2), amount: '100' },
    spender: ADDR(3),
    nonce: '7',
    deadline: '99',
    witness: { to: ADDR(4), facilitator: ADDR(5), validAfter: '0' },
  };
  const good = {
    x402Version: 2,
    accepted: { scheme: 'upto', network: 'eip155:84532' },
    payload: { signature: `0x${'1'.repeat(130)}`, permit2Authorization: auth },
  };
  assert.is(parseUptoPayment(good).authorization.maxAmount, 100n);
  assert.is(parseUptoPayment(Buffer.from(JSON.stringify(good)).toString('base64')).authorization.nonce, 7n);
  assert.is(
    code(() => parseUptoPayment({ ...good, accepted: { scheme: 'exact', network: 'eip155:84532' } })),
    'ERR_X402_SCHEME_UNSUPPORTED',
  );
  assert.is(
    code(() => parseUptoPayment({ ...good, x402Version: 1 })),
    'ERR_UPTO_PAYLOAD_INVALID',
  );
  assert.is(
    code(() => parseUptoPayment({ ...good, payload: { ...good.payload, signature: '0x12' } })),
    'ERR_UPTO_PAYLOAD_INVALID',
  );
  assert.is(
    code(() =>
      parseUptoPayment({
        ...good,
        payload: { ...good.payload, permit2Authorization: { ...auth, permitted: { token: ADDR(2), amount: '0' } } },
      }),
    ),
    'ERR_UPTO_PAYLOAD_INVALID',
  );
  assert.is(
    code(() =>
      parseUptoPayment({ ...good, payload: { ...good.payload, permit2Authorization: { ...auth, nonce: '-1' } } }),
    ),
    'ERR_UPTO_PAYLOAD_INVALID',
  );
  assert.is(
    code(() =>
      parseUptoPayment({ ...good, payload: { ...good.payload, permit2Authorization: { ...auth, from: 'me' } } }),
    ),
    'ERR_UPTO_PAYLOAD_INVALID',
  );
  assert.is(
    code(() => parseUptoPayment('x'.repeat(9000))),
    'ERR_UPTO_PAYLOAD_INVALID',
  );
});

test('the table: a file that is not the upto table is refused (ERR_UPTO_STORE) and left as it is', async () => {
  writeFileSync(join(dir, UPTO_STORE_FILE), '{"version":1,"records":[]}');
  try {
    await UptoStore.open(dir);
    assert.unreachable();
  } catch (err) {
    assert.is((err as SluiceError).code, 'ERR_UPTO_STORE');
  }
  writeFileSync(join(dir, UPTO_STORE_FILE), '{"vers');
  try {
    await UptoStore.open(dir);
    assert.unreachable();
  } catch (err) {
    assert.is((err as SluiceError).code, 'ERR_UPTO_STORE');
  }
});

function record(reference: string, maxSteps = 10n): UptoRecord {
  return {
    reference,
    state: 'open',
    network: 'eip155:84532',
    asset: ADDR(2),
    payTo: ADDR(4),
    maxAmount: (maxSteps * 10_000n).toString(),
    deadline: '99999999999',
    pricePerStep: '10000',
    stepSize: '60',
    mac: '02:00:00:00:00:01',
    at: 0,
    request: {
      x402Version: 2,
      paymentPayload: { x402Version: 2 },
      paymentRequirements: { scheme: 'upto', amount: (maxSteps * 10_000n).toString() },
    },
  };
}

function session(id: string, refs: string[], used: number, state: Session['state']): Session {
  return {
    id,
    mac: '02:00:00:00:00:01',
    ip: null,
    user: null,
    plan: 'wifi',
    metric: 'seconds',
    allotment: 600n,
    used,
    bytes: 0,
    createdAt: 0,
    startedAt: 0,
    expiresAt: null,
    endedAt: state === 'EXPIRED' ? 1 : null,
    state,
    endCause: null,
    payments: refs.map((reference) => ({ method: 'upto', reference, amount: 100_000n, asset: ADDR(2), at: 0 })),
  } as Session;
}

const SETTLED = {
  status: 200,
  body: { success: true, transaction: `0x${'ab'.repeat(32)}`, network: 'eip155:84532', payer: ADDR(1) },
};

/** `answers`: the facilitator's answers to /settle in turn (then SETTLED). */
async function setup(list: Session[] = [], answers: Array<{ status: number; body: unknown }> = []) {
  const store = await UptoStore.open(dir);
  const settles: Array<{ amount: string }> = [];
  let wake: () => void = () => {};
  const facilitator = await JsonPeer.listen(({ body: text }) => {
    const body = JSON.parse(text) as { paymentRequirements: { amount: string } };
    settles.push({ amount: body.paymentRequirements.amount });
    queueMicrotask(() => wake());
    return answers.shift() ?? SETTLED;
  });
  facilitators.push(facilitator);
  const method = new UptoMethod(
    {
      enabled: true,
      network: 'eip155:84532',
      chainId: 84532,
      facilitatorUrl: facilitator.url,
      payTo: ADDR(4),
      maxTimeoutSeconds: 86_400,
      timeoutMs: 1000,
    },
    { store, timers: { setTimeout: () => 0, clearTimeout: () => {} } },
  );
  const ended: Array<(s: Session) => void> = [];
  let written: (ids: readonly string[]) => void = () => {};
  const limits: Array<{ id: string; seconds?: bigint; bytes?: bigint }> = [];
  const sessions = {
    on: (_e: string, l: (s: Session) => void) => {
      ended.push(l);
      return () => {};
    },
    list: () => list,
    get: (id: string) => list.find((s) => s.id === id),
    byMac: () => undefined,
    setLimits: async (id: string, change: { seconds?: bigint; bytes?: bigint }) => {
      limits.push({ id, ...change });
      const s = list.find((x) => x.id === id)!;
      s.allotment = change.bytes ?? change.seconds ?? s.allotment;
      return s;
    },
  };
  const ends = new UptoEnds({
    method,
    sessions: sessions as never,
    endsWritten: {
      onEndsWritten: (l) => {
        written = l;
        return () => {};
      },
    },
    log,
  });
  sweeps.push(ends);
  const settled = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (settles.length >= n) resolve();
        else wake = check;
      };
      check();
    });
  return {
    store,
    method,
    ends,
    settles,
    limits,
    end: (s: Session) => {
      for (const l of ended) l(s);
    },
    write: (ids: string[]) => written(ids),
    settled,
  };
}

test(
  "settled only once the end is on flash; a top-up's two authorizations share the usage; zero usage settles " +
    'nothing',
  async () => {
    const t = await setup();
    await t.store.put(record('0x1:1'));
    await t.store.put(record('0x1:2'));
    await t.store.put(record('0x2:1'));
    // 15 steps: 10 on the first authorization, 5 on the top-up
    t.end(session('s1', ['0x1:1', '0x1:2'], 900, 'EXPIRED'));
    t.end(session('s2', ['0x2:1'], 0, 'EXPIRED'));
    assert.is(t.store.get('0x1:1')?.state, 'open', 'the ended event alone settles nothing');
    t.write(['s1', 's2']);
    await t.settled(2);
    assert.equal(t.settles, [{ amount: '100000' }, { amount: '50000' }]);
    await new Promise((r) => setImmediate(r));
    assert.is(t.store.get('0x1:1')?.state, 'settled');
    assert.is(t.store.get('0x1:2')?.amount, '50000');
    assert.equal(
      { state: t.store.get('0x2:1')?.state, amount: t.store.get('0x2:1')?.amount },
      { state: 'settled', amount: '0' },
    );
    t.write(['s1']);
    assert.is(t.settles.length, 2, 'a second end record settles nothing');
  },
);

test(
  'reconcile at start: ended while down → settled from ' + 'the journal; no session → released; live → kept',
  async () => {
    const t = await setup([session('gone', ['0x1:1'], 150, 'EXPIRED'), session('live', ['0x3:1'], 60, 'ACTIVE')]);
    await t.store.put(record('0x1:1'));
    await t.store.put(record('0x2:1'));
    await t.store.put(record('0x3:1'));
    await t.ends.reconcile();
    assert.equal(t.settles, [{ amount: '30000' }]);
    assert.is(t.store.get('0x1:1')?.state, 'settled');
    assert.is(t.store.get('0x2:1')?.state, 'released');
    assert.is(t.store.get('0x3:1')?.state, 'open');
    const reopened = await UptoStore.open(dir);
    assert.is(reopened.get('0x1:1')?.request, undefined, 'a finished record drops its payload');
    assert.is(reopened.get('0x3:1')?.request?.paymentRequirements.scheme, 'upto');
  },
);

/** An authorization whose deadline minus the 600 s settle margin has come, its deadline itself not yet. */
function due(reference: string, maxSteps = 10n): UptoRecord {
  return { ...record(reference, maxSteps), deadline: String(Math.floor(Date.now() / 1000) + 300) };
}

test(
  "a restart after the deadline minus the margin: a live session's authorization is settled at once for the " +
    'usage so far',
  async () => {
    // A time session extended (a grant, a CoA) past its authorization: 7 of its 10 minutes used when sluice comes back.
    const live = { ...session('live', ['0x1:1'], 420, 'ACTIVE'), allotment: 7200n };
    const t = await setup([live]);
    await t.store.put(due('0x1:1'));
    await t.ends.reconcile();
    assert.equal(t.settles, [{ amount: '70000' }], '7 steps, before the deadline');
    assert.equal(
      { state: t.store.get('0x1:1')?.state, covered: t.store.get('0x1:1')?.covered },
      { state: 'settled', covered: '420' },
    );
    assert.equal(
      t.limits,
      [{ id: 'live', seconds: 7200n - 180n }],
      'the 3 minutes nobody pays for any more leave the session',
    );
    assert.is(t.store.get('0x1:1')?.shrink, undefined, 'the mark is dropped once the session is shrunk');
    await t.ends.settleDue();
    assert.is(t.settles.length, 1, 'settled once');
  },
);

test(
  "a data session past its first authorization's deadline carries on under the top-up; the end settles the rest " +
    'on the top-up',
  async () => {
    const s = {
      ...session('d', ['0x1:1', '0x1:2'], 3_000_000, 'ACTIVE'),
      metric: 'bytes',
      allotment: 20_000_000n,
    } as Session;
    const t = await setup([s]);
    await t.store.put({ ...due('0x1:1'), stepSize: '1000000' }); // 10 × 1 MB
    await t.store.put({ ...record('0x1:2'), stepSize: '1000000' });
    await t.ends.settleDue();
    assert.equal(t.settles, [{ amount: '30000' }], '3 MB used: 3 steps');
    assert.equal(
      t.limits,
      [{ id: 'd', bytes: 13_000_000n }],
      'the 7 MB the first ceiling bought beyond that leave the session',
    );
    assert.is(t.store.get('0x1:2')?.state, 'open', 'the top-up is not due');
    // The session ends at its new allotment: 3 MB on the first (settled), 10 MB on the top-up.
    t.end({ ...s, used: 13_000_000, state: 'EXPIRED' });
    t.write(['d']);
    await t.settled(2);
    assert.equal(
      t.settles.map((x) => x.amount),
      ['30000', '100000'],
    );
  },
);

test("a stop between the shrink mark and the session's change: the next start shrinks it once", async () => {
  const s = { ...session('m', ['0x1:1'], 120, 'ACTIVE'), allotment: 7200n };
  const t = await setup([s, { ...session('n', ['0x2:1'], 120, 'ACTIVE'), allotment: 7000n }]);
  await t.store.put({
    ...record('0x1:1'),
    state: 'settling',
    amount: '20000',
    asked: 1,
    covered: '120',
    shrink: { from: '7200', by: '480' },
  });
  // Its session was shrunk already (its allotment is no longer the one the mark was written with): only the mark goes.
  await t.store.put({
    ...record('0x2:1'),
    state: 'settling',
    amount: '20000',
    asked: 1,
    covered: '120',
    shrink: { from: '7480', by: '480' },
  });
  await t.ends.reconcile();
  assert.equal(t.limits, [{ id: 'm', seconds: 6720n }]);
  assert.is(t.store.get('0x1:1')?.shrink, undefined);
  assert.is(t.store.get('0x2:1')?.shrink, undefined);
  assert.equal(
    t.settles.map((x) => x.amount),
    ['20000', '20000'],
    'the pending settles asked again',
  );
});

test(
  'a start whose reconcile is held by a slow /settle shrinks the sessions a stop left unshrunk first (the rest ' +
    'goes on in the background)',
  async () => {
    // The start waits at most RECONCILE_WAIT_MS for reconcile (1574c10); the LAN endpoint then sells top-ups, and a
    // top-up changes the allotment the mark was written with: a shrink still waiting behind the slow settle would then
    // be dropped, the customer keeping what the early-settled authorization no longer pays for.
    const live = { ...session('m', ['0x1:1'], 120, 'ACTIVE'), allotment: 7200n };
    const t = await setup([session('gone', ['0x2:1'], 150, 'EXPIRED'), live]);
    await t.store.put({
      ...record('0x1:1'),
      state: 'settling',
      amount: '20000',
      asked: 1,
      covered: '120',
      shrink: { from: '7200', by: '480' },
    });
    await t.store.put(record('0x2:1'));
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const inner = (t.method as unknown as { client: { settle: (r: unknown) => Promise<unknown> } }).client;
    const settle = inner.settle.bind(inner);
    let asked: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      asked = resolve;
    });
    inner.settle = async (r: unknown) => {
      asked();
      await held;
      return settle(r);
    };
    const done = t.ends.reconcile();
    await reached;
    await new Promise((r) => setImmediate(r));
    assert.equal(t.limits, [{ id: 'm', seconds: 6720n }], 'shrunk while the facilitator holds the first settle');
    release();
    await done;
    assert.is(t.store.get('0x1:1')?.shrink, undefined);
  },
);

test(
  "a start whose settle for a session ended while down is held still settles a live session's due authorization " +
    'meanwhile',
  async () => {
    // One after the other, a few slow answers (upto.timeout each) for the ended sessions used up the due
    // authorization's whole margin before its deadline.
    const live = { ...session('live', ['0x1:1'], 420, 'ACTIVE'), allotment: 7200n };
    const t = await setup([session('gone', ['0x2:1'], 150, 'EXPIRED'), live]);
    await t.store.put(due('0x1:1'));
    await t.store.put(record('0x2:1'));
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const inner = (
      t.method as unknown as {
        client: { settle: (r: { paymentRequirements: { amount: string } }) => Promise<unknown> };
      }
    ).client;
    const settle = inner.settle.bind(inner);
    // The due one's answer, taken by the method (it comes over HTTP, some turns of the loop after the peer sent it).
    let dueAnswered: () => void = () => {};
    const dueTaken = new Promise<void>((resolve) => {
      dueAnswered = resolve;
    });
    inner.settle = async (r) => {
      if (r.paymentRequirements.amount === '30000') await held;
      const answer = await settle(r);
      if (r.paymentRequirements.amount === '70000') dueAnswered();
      return answer;
    };
    const done = t.ends.reconcile();
    await t.settled(1);
    await dueTaken;
    await new Promise((r) => setImmediate(r));
    assert.equal(t.settles, [{ amount: '70000' }], 'the due authorization is settled while the ended one is held');
    assert.is(t.store.get('0x1:1')?.state, 'settled');
    release();
    await done;
    assert.equal(t.settles.map((x) => x.amount).sort(), ['30000', '70000']);
    assert.is(t.store.get('0x2:1')?.state, 'settled');
  },
);

test(
  'a refused first ask is failed (nothing moved); a refused repeat after a lost answer is unconfirmed (it may ' +
    'have moved, once)',
  async () => {
    const refused = {
      status: 200,
      body: { success: false, errorReason: 'permit2_simulation_failed', transaction: '' },
    };
    const t = await setup([], [refused, { status: 502, body: { error: 'bad gateway' } }, refused]);
    await t.store.put(record('0x1:1'));
    await t.store.put(record('0x2:1'));
    assert.equal(await t.method.settle('0x1:1', 60n), {
      status: 'failed',
      amount: 10_000n,
      reason: 'permit2_simulation_failed',
    });
    assert.is(t.store.get('0x1:1')?.state, 'failed');
    assert.is((await t.method.settle('0x2:1', 60n)).status, 'pending', 'no answer: the amount stays on flash');
    assert.equal(
      { state: t.store.get('0x2:1')?.state, asked: t.store.get('0x2:1')?.asked },
      { state: 'settling', asked: 1 },
    );
    await t.method.retryPending();
    assert.equal(
      { state: t.store.get('0x2:1')?.state, asked: t.store.get('0x2:1')?.asked, reason: t.store.get('0x2:1')?.reason },
      { state: 'unconfirmed', asked: 2, reason: 'permit2_simulation_failed' },
    );
    assert.equal(
      t.settles.map((x) => x.amount),
      ['10000', '10000', '10000'],
      'the same amount each time',
    );
  },
);

test.run();
