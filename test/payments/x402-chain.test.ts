// tier: chain
/**
 * x402 end to end on a real chain: a buyer key signs with viem → `ubus call sluice purchase` on the real daemon →
 * the x402 facilitator (@x402/core + @x402/evm over HTTP) settles on anvil → the gate opens → the on-chain balances of
 * buyer and pay_to change by exactly the price. Every refusal leaves both balances unchanged and the gate closed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import {
  cancelAuthorization,
  signAuthorization,
  startChain,
  submitAuthorization,
  type AuthorizationOptions,
  type TestChain,
  type TestToken,
} from '../chain/index.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { DaemonLab } from '../daemon/harness.ts';

const test = suite('x402 on a real chain');
const PRICE = 10_000n; // 0.01 USDC per 60 s step
const NET = 'eip155:84532';
let chain: TestChain;
let usdc: TestToken;
let facilitator: TestFacilitator;
let payTo: Address;
let lab: DaemonLab;
let macCounter = 0x10;

function x402Config(f: TestFacilitator, extra = ''): string {
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
\toption facilitator_url '${f.url}'
\toption network '${NET}'
\toption pay_to '${payTo}'
\toption token_name 'USDC'
\toption token_version '2'
\toption timeout '6'
\toption rpc_url '${chain.rpcUrl}'
${extra}`;
}

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  facilitator = await startFacilitator(chain);
  payTo = chain.newAccount().address;
  lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true, extraConfig: x402Config(facilitator) });
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await facilitator?.stop();
  await chain?.stop();
});

async function newBuyer(funds = 1_000_000n): Promise<PrivateKeyAccount> {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, funds);
  return buyer;
}

function newClient(): string {
  const mac = `02:00:00:00:0b:${(macCounter++).toString(16).padStart(2, '0')}`;
  lab.portal.addClient(mac, `10.0.1.${macCounter}`);
  return mac;
}

async function payload(
  buyer: PrivateKeyAccount,
  value: bigint,
  opts: Partial<AuthorizationOptions> & { network?: string; extraName?: string; version?: 1 | 2 } = {},
) {
  const { authorization, signature } = await signAuthorization(buyer, usdc, { to: payTo, value, ...opts });
  if (opts.version === 1)
    return { x402Version: 1, scheme: 'exact', network: 'base-sepolia', payload: { signature, authorization } };
  return {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: opts.network ?? NET,
      amount: value.toString(),
      asset: usdc.address,
      payTo: opts.to ?? payTo,
      maxTimeoutSeconds: 300,
      extra: { name: opts.extraName ?? 'USDC', version: '2' },
    },
    payload: { signature, authorization },
  };
}

async function purchase(mac: string, p: unknown, extra: Record<string, unknown> = {}) {
  return lab.callStatus('purchase', { mac, plan: 'wifi', payment: { method: 'x402', payload: p }, ...extra } as never);
}

/** The gate opens at once, or (a client the portal listed after sluice's last look) on the meter's next tick. */
const gateOpens = (mac: string) =>
  lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, `gate of ${mac} open`);

const code = (r: { data: Record<string, unknown> | undefined }) =>
  (r.data?.error as { code?: string } | undefined)?.code;

async function balances(buyer: Address): Promise<[bigint, bigint]> {
  return [await usdc.balanceOf(buyer), await usdc.balanceOf(payTo)];
}

/** A refused purchase: the code, both balances unchanged, no session, gate closed. */
async function refused(
  mac: string,
  buyer: Address,
  p: unknown,
  expected: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const before = await balances(buyer);
  const r = await purchase(mac, p, extra);
  assert.is(code(r), expected, `expected ${expected}, got ${JSON.stringify(r.data)}`);
  assert.equal(await balances(buyer), before, 'balances unchanged');
  assert.is((await lab.callStatus('session', { mac })).status, 4, 'no session');
  assert.is.not(lab.clientState(mac), 'Authenticated', 'gate closed');
}

test('a signed v2 payment buys time: settled on chain, gate open, balances move by exactly the price', async () => {
  const buyer = await newBuyer();
  const mac = newClient();
  const [b0, p0] = await balances(buyer.address);
  const p = await payload(buyer, 3n * PRICE);
  const r = await purchase(mac, p);
  assert.is(r.status, 0, JSON.stringify(r.data));
  const session = r.data!.session as Record<string, unknown>;
  assert.is(session.state, 'ACTIVE');
  assert.is(session.allotment, '180', 'three steps of 60 s');
  await gateOpens(mac);
  const [b1, p1] = await balances(buyer.address);
  assert.is(b0 - b1, 3n * PRICE);
  assert.is(p1 - p0, 3n * PRICE);
  const paid = (session.payments as Array<Record<string, unknown>>)[0]!;
  assert.is(paid.method, 'x402');
  assert.is(paid.amount, String(3n * PRICE));
  assert.is(paid.reference, `${buyer.address.toLowerCase()}:${p.payload.authorization.nonce}`);
});

test('a v1 payload (network "base-sepolia") is accepted too', async () => {
  const buyer = await newBuyer();
  const mac = newClient();
  const r = await purchase(mac, await payload(buyer, PRICE, { version: 1 }));
  assert.is(r.status, 0, JSON.stringify(r.data));
  assert.is((await usdc.balanceOf(payTo)) >= PRICE, true);
  await gateOpens(mac);
});

test('an overpayment buys the whole steps it pays for, never more', async () => {
  const buyer = await newBuyer();
  const mac = newClient();
  const r = await purchase(mac, await payload(buyer, 2n * PRICE + PRICE / 2n));
  assert.is(r.status, 0, JSON.stringify(r.data));
  assert.is((r.data!.session as Record<string, unknown>).allotment, '120');
});

test(
  'refused, money untouched, gate closed: forged, replayed, ' + 'expired, early, underpaid, wrong payee/network/domain',
  async () => {
    const buyer = await newBuyer();
    const now = BigInt(Math.floor(Date.now() / 1000));
    // Forged: signed by another key, claiming the buyer's address.
    const mallory = chain.newAccount();
    const forged = await payload(mallory, PRICE);
    (forged.payload.authorization as { from: string }).from = buyer.address;
    await refused(newClient(), buyer.address, forged, 'ERR_X402_SIGNATURE_INVALID');
    await refused(
      newClient(),
      buyer.address,
      await payload(buyer, PRICE, { validAfter: 0n, validBefore: now - 10n }),
      'ERR_X402_EXPIRED',
    );
    await refused(
      newClient(),
      buyer.address,
      await payload(buyer, PRICE, { validAfter: now + 600n, validBefore: now + 900n }),
      'ERR_X402_NOT_YET_VALID',
    );
    await refused(newClient(), buyer.address, await payload(buyer, PRICE - 1n), 'ERR_X402_UNDERPAID');
    await refused(newClient(), buyer.address, await payload(buyer, PRICE), 'ERR_X402_UNDERPAID', { steps: 2 });
    await refused(
      newClient(),
      buyer.address,
      await payload(buyer, PRICE, { to: chain.newAccount().address }),
      'ERR_X402_PAY_TO_MISMATCH',
    );
    await refused(
      newClient(),
      buyer.address,
      await payload(buyer, PRICE, { network: 'eip155:8453' }),
      'ERR_X402_NETWORK_MISMATCH',
    );
    // Base mainnet's USDC name on Base Sepolia's token: declared → domain mismatch; hidden → the signature fails.
    await refused(
      newClient(),
      buyer.address,
      await payload(buyer, PRICE, { domain: { name: 'USD Coin' }, extraName: 'USD Coin' }),
      'ERR_X402_DOMAIN_MISMATCH',
    );
    await refused(
      newClient(),
      buyer.address,
      await payload(buyer, PRICE, { domain: { name: 'USD Coin' } }),
      'ERR_X402_SIGNATURE_INVALID',
    );
    await refused(
      newClient(),
      buyer.address,
      await payload(buyer, PRICE, { domain: { chainId: 8453 } }),
      'ERR_X402_SIGNATURE_INVALID',
    );
    await refused(newClient(), buyer.address, { x402Version: 2, payload: {} }, 'ERR_X402_PAYLOAD_INVALID');
    assert.is(facilitator.calls.settle, 3, 'no refused payment reached /settle');
  },
);

test('a replayed nonce is refused, also after a daemon restart; the money moved once', async () => {
  const buyer = await newBuyer();
  const mac = newClient();
  const p = await payload(buyer, PRICE);
  assert.is((await purchase(mac, p)).status, 0);
  const after = await balances(buyer.address);
  const other = newClient();
  await refused(other, buyer.address, p, 'ERR_X402_NONCE_REPLAYED');
  await lab.stopDaemon();
  await lab.startDaemon();
  await refused(newClient(), buyer.address, p, 'ERR_X402_NONCE_REPLAYED');
  assert.equal(await balances(buyer.address), after);
});

test('facilitator down: refused before any money moves', async () => {
  const buyer = await newBuyer();
  await facilitator.down();
  try {
    await refused(newClient(), buyer.address, await payload(buyer, PRICE), 'ERR_X402_FACILITATOR_UNAVAILABLE');
  } finally {
    await facilitator.up();
  }
});

test(
  'verified but the settle fails: refused, no money ' + 'moved, and the same authorization can be used later',
  async () => {
    const buyer = await newBuyer();
    const p = await payload(buyer, PRICE);
    facilitator.faults.settleFails = true;
    try {
      await refused(newClient(), buyer.address, p, 'ERR_X402_SETTLE_FAILED');
    } finally {
      facilitator.faults.settleFails = false;
    }
    const mac = newClient();
    assert.is((await purchase(mac, p)).status, 0, 'a failed settle does not burn the nonce');
  },
);

test('x402-rs dialect: a 400 refusal is read as the facilitator\'s "no"', async () => {
  const buyer = await newBuyer(PRICE - 1n); // signature fine locally; the facilitator sees the balance is short
  facilitator.faults.dialect = 'x402-rs';
  try {
    await refused(newClient(), buyer.address, await payload(buyer, PRICE), 'ERR_X402_VERIFY_REJECTED');
  } finally {
    facilitator.faults.dialect = 'spec';
  }
});

test(
  'settle times out but succeeded on chain: pending, then ' + 'the session appears once on retry; once after restart',
  async () => {
    const buyer = await newBuyer();
    const mac = newClient();
    const p = await payload(buyer, PRICE);
    const [b0, p0] = await balances(buyer.address);
    facilitator.faults.settleDelayMs = 10_000; // sluice's x402.timeout is 6 s
    let r;
    try {
      r = await purchase(mac, p);
    } finally {
      facilitator.faults.settleDelayMs = 0;
    }
    assert.is(code(r), 'ERR_X402_SETTLEMENT_PENDING');
    assert.is.not(lab.clientState(mac), 'Authenticated', 'no access until confirmed');
    const r2 = await purchase(mac, p);
    assert.is(r2.status, 0, `retry grants: ${JSON.stringify(r2.data)}`);
    await gateOpens(mac);
    assert.equal(await balances(buyer.address), [b0 - PRICE, p0 + PRICE]);
    assert.is(code(await purchase(mac, p)), 'ERR_X402_NONCE_REPLAYED', 'once');
    const s = (await lab.call('session', { mac })).session as Record<string, unknown>;
    assert.is(s.allotment, '60', 'granted once');

    // The same with a restart in between instead of a retry: the daemon resolves it on start.
    const buyer2 = await newBuyer();
    const mac2 = newClient();
    facilitator.faults.settleDelayMs = 10_000;
    try {
      assert.is(code(await purchase(mac2, await payload(buyer2, PRICE))), 'ERR_X402_SETTLEMENT_PENDING');
    } finally {
      facilitator.faults.settleDelayMs = 0;
    }
    await lab.stopDaemon();
    await lab.startDaemon();
    await lab.waitFor(
      async () => (await lab.callStatus('session', { mac: mac2 })).status === 0,
      20_000,
      'late grant after restart',
    );
    await lab.waitFor(() => lab.clientState(mac2) === 'Authenticated', 30_000, 'gate opened');
    assert.is(await usdc.balanceOf(buyer2.address), 1_000_000n - PRICE);
  },
);

/**
 * A purchase whose /settle the facilitator takes and never answers nor settles: sluice answers pending. The
 * facilitator keeps stalling (also the resolver's repeated settles) until `then` has run on chain.
 */
async function stalledPurchase(mac: string, p: unknown, then: () => Promise<unknown>): Promise<void> {
  facilitator.faults.settleStalls = true;
  try {
    assert.is(code(await purchase(mac, p)), 'ERR_X402_SETTLEMENT_PENDING');
    await then();
  } finally {
    facilitator.faults.settleStalls = false;
  }
}

test(
  'the buyer cancels the authorization while the settle is unanswered: nonce used, no money moved, NOT granted ' +
    '(also after a restart)',
  async () => {
    const buyer = await newBuyer();
    await chain.fund(buyer.address); // gas for its own cancelAuthorization
    const mac = newClient();
    const p = await payload(buyer, PRICE);
    const before = await balances(buyer.address);
    await stalledPurchase(mac, p, () => cancelAuthorization(chain, usdc, buyer, p.payload.authorization.nonce));
    assert.is(
      await usdc.authorizationState(buyer.address, p.payload.authorization.nonce),
      true,
      'the nonce reads as used',
    );
    // The customer asks again: sluice resolves it there and then (or its resolver already did).
    const r = await purchase(mac, p);
    assert.is(code(r), 'ERR_X402_AUTHORIZATION_CANCELED', JSON.stringify(r.data));
    assert.equal(await balances(buyer.address), before, 'no money moved');
    assert.is((await lab.callStatus('session', { mac })).status, 4, 'no session');
    assert.is.not(lab.clientState(mac), 'Authenticated', 'gate closed');
    await lab.stopDaemon();
    await lab.startDaemon();
    assert.is(code(await purchase(mac, p)), 'ERR_X402_AUTHORIZATION_CANCELED', 'remembered across a restart');
    assert.is((await lab.callStatus('session', { mac })).status, 4, 'still no session');
  },
);

test('the buyer spends the nonce on another transfer while the settle is unanswered: NOT granted', async () => {
  const buyer = await newBuyer();
  const mac = newClient();
  const p = await payload(buyer, PRICE);
  const paid0 = await usdc.balanceOf(payTo);
  // Same nonce, signed again to the buyer's other address: AuthorizationUsed(from, nonce) is logged, pay_to gets
  // nothing.
  const elsewhere = await signAuthorization(buyer, usdc, {
    to: chain.newAccount().address,
    value: PRICE,
    nonce: p.payload.authorization.nonce,
  });
  await stalledPurchase(mac, p, () => submitAuthorization(chain, usdc, chain.deployer, elsewhere));
  assert.is(code(await purchase(mac, p)), 'ERR_X402_AUTHORIZATION_CANCELED');
  assert.is(await usdc.balanceOf(payTo), paid0, 'pay_to got nothing');
  assert.is((await lab.callStatus('session', { mac })).status, 4, 'no session');
  assert.is.not(lab.clientState(mac), 'Authenticated', 'gate closed');
});

test(
  'the settle is unanswered, then the facilitator settles ' + 'it after all: proven by the transfer log, granted once',
  async () => {
    const buyer = await newBuyer();
    const mac = newClient();
    const p = await payload(buyer, PRICE);
    const [b0, p0] = await balances(buyer.address);
    // The facilitator's own late broadcast (as a queued settle landing after sluice gave up).
    await stalledPurchase(mac, p, () =>
      facilitator.inTurn(() =>
        submitAuthorization(chain, usdc, facilitator.account, {
          authorization: p.payload.authorization,
          signature: p.payload.signature,
        }),
      ),
    );
    const r = await purchase(mac, p);
    assert.is(r.status, 0, JSON.stringify(r.data));
    await gateOpens(mac);
    assert.equal(await balances(buyer.address), [b0 - PRICE, p0 + PRICE]);
    assert.is(code(await purchase(mac, p)), 'ERR_X402_NONCE_REPLAYED', 'once');
  },
);

test(
  'the first settle is refused "nonce used" because the authorization already paid pay_to: the chain says so, ' +
    'granted once',
  async () => {
    const buyer = await newBuyer();
    const mac = newClient();
    const p = await payload(buyer, PRICE);
    const [b0, p0] = await balances(buyer.address);
    // Between sluice's /verify and its /settle, the authorization lands on chain by another hand (the facilitator's
    // own earlier attempt, say): the facilitator's settle then finds the nonce used.
    facilitator.faults.beforeSettle = async () => {
      facilitator.faults.beforeSettle = undefined;
      await submitAuthorization(chain, usdc, chain.deployer, {
        authorization: p.payload.authorization,
        signature: p.payload.signature,
      });
    };
    let r;
    try {
      r = await purchase(mac, p);
    } finally {
      facilitator.faults.beforeSettle = undefined;
    }
    assert.is(r.status, 0, `granted from the chain's word, not ERR_X402_SETTLE_FAILED: ${JSON.stringify(r.data)}`);
    await gateOpens(mac);
    assert.equal(await balances(buyer.address), [b0 - PRICE, p0 + PRICE], 'the money moved once');
    assert.is(code(await purchase(mac, p)), 'ERR_X402_NONCE_REPLAYED', 'once');
  },
);

test(
  "a payload sent again from another device while its settle is pending: that device gets nothing, the payer's " +
    'device the session',
  async () => {
    const buyer = await newBuyer();
    const payer = newClient();
    const stranger = newClient();
    const p = await payload(buyer, PRICE);
    facilitator.faults.settleDelayMs = 10_000; // settles on chain, answers after sluice's 6 s timeout
    try {
      assert.is(code(await purchase(payer, p)), 'ERR_X402_SETTLEMENT_PENDING');
    } finally {
      facilitator.faults.settleDelayMs = 0;
    }
    await lab.waitFor(
      () => usdc.authorizationState(buyer.address, p.payload.authorization.nonce),
      20_000,
      'the transfer mined',
    );
    // The payload was readable on the open network: another device sends it.
    assert.is(code(await purchase(stranger, p)), 'ERR_X402_NONCE_REPLAYED');
    await lab.waitFor(
      async () => (await lab.callStatus('session', { mac: payer })).status === 0,
      20_000,
      'the payer granted by the resolver',
    );
    await gateOpens(payer);
    assert.is((await lab.callStatus('session', { mac: stranger })).status, 4, 'no session for the other device');
    assert.is.not(lab.clientState(stranger), 'Authenticated');
    assert.is(code(await purchase(stranger, p)), 'ERR_X402_NONCE_REPLAYED', 'nor later');
  },
);

test.run();
