// tier: chain
/**
 * x402 without chain lookups (`rpc_url 'none'`: Base Sepolia's public default is not used either): an unanswered
 * settle is decided by the facilitator's answer alone, and a facilitator that
 * refuses a second settle because the nonce is used says nothing about where the money went (the buyer may have
 * canceled the authorization). Such a purchase is kept `unconfirmed` and NOT granted; setting rpc_url later (a reload)
 * decides it from the chain's logs: the paid one is granted once, the canceled one refused. Real daemon, anvil, and the
 * x402 Foundation's facilitator over HTTP.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { cancelAuthorization, signAuthorization, startChain, type TestChain, type TestToken } from '../chain/index.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { DaemonLab } from '../daemon/harness.ts';

const test = suite('x402 without rpc_url: unconfirmed settles');
const PRICE = 10_000n;
const NET = 'eip155:84532';
let chain: TestChain;
let usdc: TestToken;
let facilitator: TestFacilitator;
let payTo: Address;
let lab: DaemonLab;
let macCounter = 0x10;

function x402Config(rpc: boolean): string {
  return `
config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${PRICE}'
\toption asset '${usdc.address}'
\toption currency 'USDC'
\toption decimals '6'
\toption max_steps '100'

config x402 'x402'
\toption enabled '1'
\toption facilitator_url '${facilitator.url}'
\toption network '${NET}'
\toption pay_to '${payTo}'
\toption token_name 'USDC'
\toption token_version '2'
\toption timeout '6'
\toption rpc_url '${rpc ? chain.rpcUrl : 'none'}'
`;
}

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  facilitator = await startFacilitator(chain);
  payTo = chain.newAccount().address;
  lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true, extraConfig: x402Config(false) });
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await facilitator?.stop();
  await chain?.stop();
});

async function newBuyer(): Promise<PrivateKeyAccount> {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 1_000_000n);
  return buyer;
}

function newClient(): string {
  const mac = `02:00:00:00:0c:${(macCounter++).toString(16).padStart(2, '0')}`;
  lab.portal.addClient(mac, `10.0.2.${macCounter}`);
  return mac;
}

async function payload(buyer: PrivateKeyAccount) {
  const { authorization, signature } = await signAuthorization(buyer, usdc, { to: payTo, value: PRICE });
  return {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: NET,
      amount: PRICE.toString(),
      asset: usdc.address,
      payTo,
      maxTimeoutSeconds: 300,
      extra: { name: 'USDC', version: '2' },
    },
    payload: { signature, authorization },
  };
}

const purchase = (mac: string, p: unknown) =>
  lab.callStatus('purchase', { mac, plan: 'wifi', payment: { method: 'x402', payload: p } } as never);
const code = (r: { data: Record<string, unknown> | undefined }) =>
  (r.data?.error as { code?: string } | undefined)?.code;
const noSession = async (mac: string) => {
  assert.is((await lab.callStatus('session', { mac })).status, 4, `no session for ${mac}`);
  assert.is.not(lab.clientState(mac), 'Authenticated', `gate of ${mac} closed`);
};

// Shared by the tests below: a canceled purchase and a really paid one, both left unconfirmed without rpc_url.
let canceled: { mac: string; p: Awaited<ReturnType<typeof payload>>; buyer: Address };
let paid: { mac: string; p: Awaited<ReturnType<typeof payload>>; buyer: Address };

test(
  'the buyer cancels while the settle is unanswered: the facilitator says "nonce used", which is not payment: ' +
    'NOT granted',
  async () => {
    const buyer = await newBuyer();
    await chain.fund(buyer.address);
    const mac = newClient();
    const p = await payload(buyer);
    facilitator.faults.settleStalls = true; // also the resolver's repeated settles, until the cancel is mined
    try {
      assert.is(code(await purchase(mac, p)), 'ERR_X402_SETTLEMENT_PENDING');
      await cancelAuthorization(chain, usdc, buyer, p.payload.authorization.nonce);
    } finally {
      facilitator.faults.settleStalls = false;
    }
    const r = await purchase(mac, p);
    assert.is(code(r), 'ERR_X402_SETTLEMENT_UNCONFIRMED', JSON.stringify(r.data));
    assert.is(await usdc.balanceOf(buyer.address), 1_000_000n, 'no money moved');
    assert.is(await usdc.balanceOf(payTo), 0n);
    await noSession(mac);
    canceled = { mac, p, buyer: buyer.address };
  },
);

test(
  'a settle that really happened but whose answer was lost is unconfirmed too without rpc_url (nothing tells it ' +
    'from a cancel)',
  async () => {
    const buyer = await newBuyer();
    const mac = newClient();
    const p = await payload(buyer);
    facilitator.faults.settleDelayMs = 10_000; // settles on chain, then answers after sluice's 6 s timeout
    try {
      assert.is(code(await purchase(mac, p)), 'ERR_X402_SETTLEMENT_PENDING');
    } finally {
      facilitator.faults.settleDelayMs = 0;
    }
    await lab.waitFor(
      () => usdc.authorizationState(buyer.address, p.payload.authorization.nonce),
      20_000,
      "the facilitator's transfer mined",
    );
    assert.is(code(await purchase(mac, p)), 'ERR_X402_SETTLEMENT_UNCONFIRMED');
    assert.is(await usdc.balanceOf(payTo), PRICE, 'the money did move');
    await noSession(mac);
    paid = { mac, p, buyer: buyer.address };
  },
);

test(
  'rpc_url set by a reload: the chain decides both: the ' + 'paid one is granted once, the canceled one refused',
  async () => {
    // A restart without rpc_url keeps both undecided (and leaves no resolver round running before the reload).
    await lab.stopDaemon();
    await lab.startDaemon();
    await lab.waitFor(
      () => /x402 pending purchases .*unconfirmed=2/.test(lab.output),
      20_000,
      'the start-up resolver done',
    );
    await noSession(paid.mac);
    lab.options.extraConfig = x402Config(true);
    lab.writeConfig();
    const reloaded = await lab.call('reload');
    assert.is(reloaded.reloaded, true, JSON.stringify(reloaded));
    assert.equal(reloaded.restart_required, [], 'rpc_url applies without a restart');
    await lab.waitFor(
      async () => (await lab.callStatus('session', { mac: paid.mac })).status === 0,
      20_000,
      'the paid purchase granted on reload',
    );
    await lab.waitFor(() => lab.clientState(paid.mac) === 'Authenticated', 30_000, 'its gate open');
    assert.is(
      ((await lab.call('session', { mac: paid.mac })).session as Record<string, unknown>).allotment,
      '60',
      'granted once',
    );
    assert.is(code(await purchase(paid.mac, paid.p)), 'ERR_X402_NONCE_REPLAYED');
    assert.is(code(await purchase(canceled.mac, canceled.p)), 'ERR_X402_AUTHORIZATION_CANCELED');
    await noSession(canceled.mac);
    assert.is(await usdc.balanceOf(canceled.buyer), 1_000_000n);
    assert.is(await usdc.balanceOf(payTo), PRICE);
    // A restart finds nothing left to grant.
    await lab.stopDaemon();
    await lab.startDaemon();
    assert.is(
      ((await lab.call('session', { mac: paid.mac })).session as Record<string, unknown>).allotment,
      '60',
      'still once',
    );
    await noSession(canceled.mac);
  },
);

test.run();
