/**
 * The set-up the pay page's batch-settlement tests share: the daemon and @x402/evm's facilitator on anvil
 * (test/chain/batch-lab.ts), a funded buyer, a browser wallet (EIP-1193) backed by that buyer's key, the page's
 * storage, and the page's own moves (the deposit button, a purchase, a terminate that returns the metered charge).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Hex } from 'viem';
import type { TestChain } from '../chain/index.ts';
import { startBatchLab, type BatchLab } from '../chain/batch-lab.ts';
import type { FakeElement, FakePage } from './fake-dom.ts';

export const STEP_PRICE = 10_000n;
export const STEPS = 10n;
export const PRICE = STEPS * STEP_PRICE;
export const FUNDS = 5_000_000n;

export function batchPageRig(
  name: string,
  o: { mac: string; refund: 'at-end' | 'on-request'; holdingProxy?: boolean },
) {
  const test = suite(name);
  const MAC = o.mac;
  let world: BatchLab;
  let buyer: ReturnType<TestChain['newAccount']>;
  const storage = new Map<string, string>();
  const prompts: string[] = [];

  test.before(async () => {
    world = await startBatchLab({
      mac: MAC,
      stepPrice: STEP_PRICE,
      refund: o.refund,
      ...(o.holdingProxy && { holdingProxy: true }),
    });
    buyer = world.chain.newAccount();
    await world.usdc.mint(buyer.address, FUNDS);
  });

  test.after(async () => {
    await world?.close();
  });

  /** A browser wallet on the test chain: what eth_signTypedData_v4 gets is what the wallet signs. */
  const ethereum = {
    async request({ method, params = [] }: { method: string; params?: unknown[] }): Promise<unknown> {
      prompts.push(method);
      switch (method) {
        case 'eth_requestAccounts':
          return [buyer.address];
        case 'eth_chainId':
          return `0x${(84532).toString(16)}`;
        case 'eth_call': {
          const call = params[0] as { to: Hex; data: Hex };
          return (await world.chain.publicClient.call({ to: call.to, data: call.data })).data;
        }
        case 'eth_signTypedData_v4': {
          const { types, domain, primaryType, message } = JSON.parse(String(params[1])) as Record<string, any>;
          assert.is(String(params[0]).toLowerCase(), buyer.address.toLowerCase());
          delete types.EIP712Domain;
          return buyer.signTypedData({ types, domain, primaryType, message } as never);
        }
      }
      throw Object.assign(new Error(`unsupported ${method}`), { code: 4200 });
    },
  };

  function batchButton(page: FakePage): { card: FakeElement; button: FakeElement; steps: FakeElement } {
    const card = page.byId('plans').children.find((c) => c.getAttribute('data-plan') === 'wifi')!;
    const steps = card.all().find((e) => e.tagName === 'input')!;
    const button = card
      .all()
      .find((e) => e.className === 'batch')
      ?.children.find((e) => e.tagName === 'button');
    assert.ok(button, `a deposit button on the plan card: ${card.text()}`);
    return { card, button: button!, steps };
  }

  async function buy(page: FakePage, steps: bigint): Promise<void> {
    const b = batchButton(page);
    b.steps.value = String(steps);
    b.steps.dispatch('input');
    assert.ok(!b.button.disabled);
    b.button.dispatch('click');
    await page.batch.pending;
    await page.settle();
    if (page.byId('message').className !== 'ok')
      console.log(
        world.lab.output
          .split('\n')
          .filter((l) => /refused|batch/i.test(l))
          .slice(-5)
          .join('\n'),
      );
  }

  /** Ends the session (ubus terminate) and returns its metered charge: whole started steps × the price per step. */
  async function terminate(): Promise<bigint> {
    const { lab } = world;
    await lab.waitFor(async () => BigInt(String((await lab.session(MAC)).used)) > 0n, 30_000, 'the meter counted');
    const t = await lab.callStatus('terminate', { mac: MAC });
    assert.is(t.status, 0, JSON.stringify(t.data));
    lab.portal.addClient(MAC, '127.0.0.1');
    const used = BigInt(String((t.data!.session as Record<string, unknown>).used));
    return ((used + 59n) / 60n) * STEP_PRICE;
  }

  return {
    test,
    MAC,
    storage,
    prompts,
    ethereum,
    batchButton,
    buy,
    terminate,
    get world(): BatchLab {
      return world;
    },
    get buyer(): ReturnType<TestChain['newAccount']> {
      return buyer;
    },
  };
}
