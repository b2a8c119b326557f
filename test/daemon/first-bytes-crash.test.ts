// tier: chain
/**
 * Through the real daemon on the local chain with a paid method (batch-settlement: the charge is the
 * metered bytes). What broke: a data session's counter mark reached the journal only with its first usage checkpoint,
 * a second after its first bytes; a kill -9 before that restarted the meter with no mark, so the first reading after
 * the restart was taken as the base and every byte before it forgiven (1.5 MiB used, 0.5 billed). Now the purchase
 * is journaled with the reading its session starts from (zero: the auth that opens the gate starts the portal's
 * counters at 0), so a kill -9 at any moment bills every byte the portal counted.
 *
 * The portal is the ndsctl stand-in over its control socket: this test sets its counters (in KiB, as openNDS prints
 * them) and reads them back as the truth. The kill comes 100 ms, 500 ms and 1 s after the first bytes (the first
 * checkpoint was due ~1 s after the tick that billed them).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address, Hex } from 'viem';
import { createBatchSettlementEIP3009DepositPayload } from '@x402/evm/batch-settlement/client';
import type { TestChain, TestToken } from '../chain/index.ts';
import { deployBatchStack } from '../chain/batch.ts';
import { receiverAuthorizer, startChainDaemon, type ChainDaemon } from '../chain/daemon-rig.ts';
import type { DaemonLab } from './harness.ts';
import { batchSettlementSection, usdcPlanSection } from '../helpers/uci-sections.ts';

const test = suite("kill -9 in a data session's first second");
const NET = 'eip155:84532';
const KiB = 1024;
/** One step is one KiB, so the charge shows every KiB billed or forgiven. */
const STEP_PRICE = 10n;
const STEPS = 8192n;
const DEPOSIT = 1_000_000n;
const FUNDS = 5_000_000n;
let chain: TestChain;
let usdc: TestToken;
let receiver: Address;
let authorizer: Address;
let lab: DaemonLab;
let rig: ChainDaemon<unknown> | undefined;

test.before(async () => {
  rig = await startChainDaemon({
    deploy: deployBatchStack,
    facilitator: (chain) => ({ batchSettlement: { authorizer: chain.newAccount() } }),
    // checkpoint_interval 60: no periodic checkpoint can come between the first bytes and the kill (only the first
    // one).
    checkpointInterval: 60,
    config: async ({ chain, usdc, facilitator }) => {
      receiver = chain.newAccount().address;
      authorizer = await receiverAuthorizer(facilitator);
      return (
        usdcPlanSection({
          id: 'kib',
          metric: 'bytes',
          stepSize: KiB,
          price: STEP_PRICE,
          asset: usdc.address,
          maxSteps: 100_000,
        }) +
        batchSettlementSection({
          facilitatorUrl: facilitator.url,
          receiver,
          receiverAuthorizer: authorizer,
          refund: 'at-end',
        })
      );
    },
  });
  ({ chain, usdc, lab } = rig);
});

test.after(async () => {
  await rig?.close();
});

/** The portal's own count of the client's bytes this session (what openNDS prints, in whole KiB). */
function portalCounted(mac: string): number {
  const c = lab.portal.read().model.get(mac) as { downloadBytes: number; uploadBytes: number } | undefined;
  if (c === undefined) throw new Error(`the portal does not list ${mac}`);
  return Math.floor(c.downloadBytes / KiB) * KiB + Math.floor(c.uploadBytes / KiB) * KiB;
}

/**
 * Waits until the meter has completed `n` more ticks than it had when called (its readings then include the traffic).
 */
async function ticksAfterNow(n: number): Promise<void> {
  const done = async (): Promise<number> =>
    Number(((await lab.call('stats')).meter as Record<string, unknown>).ticks_ok);
  const from = await done();
  await lab.waitFor(async () => (await done()) >= from + n, 30_000, `${n} meter ticks`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

[100, 500, 1000].forEach((killAfterMs, i) => {
  test(`kill -9 ${killAfterMs} ms after the first bytes: the charge is every KiB the portal counted`, async () => {
    const buyer = chain.newAccount();
    const voucherKey = chain.newAccount();
    await usdc.mint(buyer.address, FUNDS);
    const mac = `02:00:00:00:1c:0${i + 1}`;
    lab.portal.addClient(mac, `10.0.3.${i + 1}`);
    const price = STEPS * STEP_PRICE;
    const requirements = {
      scheme: 'batch-settlement',
      network: NET,
      amount: price.toString(),
      asset: usdc.address,
      payTo: receiver,
      maxTimeoutSeconds: 3600,
      extra: { receiverAuthorizer: authorizer, withdrawDelay: 900, name: 'USDC', version: '2' },
    };
    const config = {
      payer: buyer.address,
      payerAuthorizer: voucherKey.address,
      receiver,
      receiverAuthorizer: authorizer,
      token: usdc.address,
      withdrawDelay: 900,
      salt: `0x${(i + 1).toString(16).padStart(64, '0')}` as Hex,
    };
    const built = await createBatchSettlementEIP3009DepositPayload(
      buyer as never,
      2,
      requirements as never,
      config as never,
      DEPOSIT.toString(),
      price.toString(),
      voucherKey as never,
    );
    const r = await lab.callStatus('purchase', {
      mac,
      plan: 'kib',
      steps: String(STEPS),
      payment: {
        method: 'batch-settlement',
        payload: { x402Version: 2, accepted: requirements, payload: built.payload },
      },
    } as never);
    assert.is(r.status, 0, JSON.stringify(r.data));
    await lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, 'gate open');

    // The first bytes, more while the kill comes, more while sluice is down, and more after the restart.
    assert.ok(lab.portal.addTraffic(mac, 1024 * KiB, 64 * KiB));
    await sleep(killAfterMs);
    lab.portal.addTraffic(mac, 512 * KiB, 0);
    await lab.stopDaemon('SIGKILL');
    await lab.reconnectClient();
    lab.portal.addTraffic(mac, 256 * KiB, 32 * KiB);
    await lab.startDaemon();
    lab.portal.addTraffic(mac, 256 * KiB, 0);
    await ticksAfterNow(2);

    const counted = portalCounted(mac);
    assert.is(counted, (1024 + 64 + 512 + 256 + 32 + 256) * KiB);
    const receiverBefore = await usdc.balanceOf(receiver);
    const t = await lab.callStatus('terminate', { mac });
    assert.is(t.status, 0, JSON.stringify(t.data));
    const used = Number((t.data!.session as Record<string, unknown>).used);
    assert.is(used, counted, `billed ${used} bytes of the ${counted} the portal counted`);
    const charge = BigInt(counted / KiB) * STEP_PRICE;
    await lab.waitFor(
      async () => (await usdc.balanceOf(receiver)) - receiverBefore === charge,
      60_000,
      `the claim of ${charge}`,
    );
    await lab.waitFor(
      async () => (await usdc.balanceOf(buyer.address)) === FUNDS - charge,
      60_000,
      'the refund of the rest',
    );
  });
});

test.run();
