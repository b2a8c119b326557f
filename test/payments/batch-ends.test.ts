// tier: fast
/**
 * batch-settlement and the sessions: a voucher-paid session is charged what it used only once its end record is on
 * flash, once; at start an open charge whose session ended while sluice was down is charged, one no session holds is
 * dropped (nothing used, nothing charged), a live one is kept. The store is the real one on a temp dir; no money
 * moves here (the chain test does that), so the facilitator URL is never called.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BatchChannelStore, type ChannelRecord } from '../../src/payments/batch-settlement/batch-channels.ts';
import { BatchSettlementMethod } from '../../src/payments/batch-settlement/x402-batch.ts';
import { BatchSettlementEnds } from '../../src/payments/batch-settlement/x402-batch-ends.ts';
import { BatchSettler } from '../../src/payments/batch-settlement/x402-batch-settler.ts';
import { batchReference } from '../../src/payments/batch-settlement/x402-batch.ts';
import type { Session } from '../../src/sessions/index.ts';
import type { Log } from '../../src/log.ts';
import { removeTempDir } from '../helpers/temp.ts';

const test = suite('batch-settlement session ends');
const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Log;
const ADDR = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
let dir: string;

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-batch-ends-'));
});
test.after.each(() => {
  removeTempDir(dir);
});

function record(id: string, ceiling: bigint): ChannelRecord {
  return {
    channelId: id,
    network: 'eip155:84532',
    chainId: 84532,
    config: {
      payer: ADDR(1),
      payerAuthorizer: ADDR(2),
      receiver: ADDR(3),
      receiverAuthorizer: ADDR(4),
      token: ADDR(5),
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(64)}`,
    },
    charged: 0n,
    signedMax: ceiling,
    signature: `0x${'1'.repeat(130)}`,
    balance: 1_000_000n,
    totalClaimed: 0n,
    withdrawRequestedAt: 0,
    refundNonce: 0n,
    syncedAt: 0,
    lastRequestAt: 0,
    purchases: 1,
    open: {
      reference: batchReference(id, ceiling),
      base: 0n,
      pricePerStep: 10_000n,
      stepSize: 60n,
      mac: '02:00:00:00:00:01',
      at: 0,
    },
  };
}

function session(id: string, ref: string, used: number, state: Session['state']): Session {
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
    payments: [{ method: 'batch-settlement', reference: ref, amount: 100_000n, asset: ADDR(5), at: 0 }],
  } as Session;
}

async function setup(list: Session[] = []) {
  const store = await BatchChannelStore.open(dir);
  const method = new BatchSettlementMethod(
    {
      enabled: true,
      network: 'eip155:84532',
      chainId: 84532,
      facilitatorUrl: 'http://127.0.0.1:9',
      receiver: ADDR(3),
      receiverAuthorizer: ADDR(4),
      withdrawDelay: 900,
      tokenName: 'USDC',
      tokenVersion: '2',
      refund: 'on-request',
      refundIdleMs: 0,
      timeoutMs: 1000,
    },
    { store },
  );
  let charged = 0;
  // The settler hears of a charge once it is on flash: the test awaits that, not a timer.
  let wake: () => void = () => {};
  const settler = {
    charged: () => {
      charged++;
      wake();
    },
  } as unknown as BatchSettler;
  const nextCharge = () =>
    new Promise<void>((r) => {
      wake = r;
    });
  const ended: Array<(s: Session) => void> = [];
  let written: (ids: readonly string[]) => void = () => {};
  const sessions = {
    on: (_e: string, l: (s: Session) => void) => {
      ended.push(l);
      return () => {};
    },
    list: () => list,
    get: () => undefined,
    byMac: () => undefined,
  };
  const ends = new BatchSettlementEnds({
    method,
    settler,
    log,
    sessions: sessions as never,
    endsWritten: {
      onEndsWritten: (l) => {
        written = l;
        return () => {};
      },
    },
  });
  return {
    store,
    method,
    ends,
    end: (s: Session) => ended.forEach((l) => l(s)),
    written: (ids: string[]) => written(ids),
    counts: () => ({ charged }),
    nextCharge,
  };
}

const ID = `0x${'a'.repeat(64)}`;
const ID2 = `0x${'b'.repeat(64)}`;

test('charged when the end record is durable, not on the ended event; once', async () => {
  const t = await setup();
  await t.store.put(record(ID, 100_000n));
  t.end(session('s1', batchReference(ID, 100_000n), 130, 'EXPIRED'));
  assert.is(t.store.get(ID)?.charged, 0n, 'the ended event alone charges nothing');
  const first = t.nextCharge();
  t.written(['s1']);
  await first;
  const r = (await BatchChannelStore.open(dir)).get(ID);
  assert.is(r?.charged, 30_000n, '130 s = 3 steps, on flash');
  assert.is(r?.open, undefined);
  const second = t.nextCharge();
  t.written(['s1']); // the same end told again (a retried append)
  assert.is(t.counts().charged, 1, 'the end was forgotten once charged: nothing to charge');
  void second;
  assert.is(t.store.get(ID)?.charged, 30_000n, 'a second durable end is not charged again');
  assert.is(await t.method.charge(batchReference(ID, 100_000n), 600n), 0n, 'nor a direct second charge');
});

test(
  'start: an ended session is charged (capped at its ' + 'ceiling), an unheld open charge dropped, a live one kept',
  async () => {
    const live = batchReference(ID2, 50_000n);
    const t = await setup([
      session('s1', batchReference(ID, 100_000n), 99_999, 'EXPIRED'),
      session('s2', live, 10, 'ACTIVE'),
    ]);
    await t.store.put(record(ID, 100_000n));
    await t.store.put(record(ID2, 50_000n));
    const ID3 = `0x${'c'.repeat(64)}`;
    await t.store.put(record(ID3, 70_000n));
    await t.ends.reconcile();
    const s = await BatchChannelStore.open(dir);
    assert.is(s.get(ID)?.charged, 100_000n, 'never above the ceiling the customer signed');
    assert.is(s.get(ID2)?.open?.reference, live);
    assert.is(s.get(ID3)?.open, undefined);
    assert.is(s.get(ID3)?.charged, 0n, 'a grant no session holds is charged nothing');
    assert.is(t.counts().charged, 1, 'the settler heard of the charge: its passes are started by the plugin host');
  },
);

test('a table that is not the channel table is refused, not overwritten', async () => {
  const { writeFileSync, readFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'batch-channels.json'), '{"version":1,"channels":[{"channelId":1}]}');
  try {
    await BatchChannelStore.open(dir);
    assert.unreachable('opened');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_BATCH_STORE');
  }
  assert.is(readFileSync(join(dir, 'batch-channels.json'), 'utf8'), '{"version":1,"channels":[{"channelId":1}]}');
});

test(
  'one damaged channel or intent among good ones: ERR_BATCH_STORE (never the good ones alone), ' + 'the file untouched',
  async () => {
    const { writeFileSync, readFileSync } = await import('node:fs');
    const store = await BatchChannelStore.open(dir);
    await store.put(record(ID, 100_000n));
    const path = join(dir, 'batch-channels.json');
    const table = JSON.parse(readFileSync(path, 'utf8')) as { channels: Array<Record<string, unknown>> };
    const good = table.channels[0]!;
    for (const bad of [
      { ...table, channels: [good, { ...good, channelId: undefined }] },
      { ...table, channels: [good], intents: [{ channelId: ID }] },
    ]) {
      const text = JSON.stringify(bad);
      writeFileSync(path, text);
      try {
        await BatchChannelStore.open(dir);
        assert.unreachable('opened');
      } catch (err) {
        assert.is((err as { code?: string }).code, 'ERR_BATCH_STORE', String(err));
      }
      assert.is(readFileSync(path, 'utf8'), text);
    }
  },
);

test.run();
