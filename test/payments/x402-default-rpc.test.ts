// tier: chain
/**
 * A default install (no `x402.rpc_url`) resolves a settle whose answer was lost from the chain by
 * itself, through the network's public endpoint (x402/networks.ts DEFAULT_RPC_URLS: Base, Base Sepolia). The loader
 * is shown picking the default (and `rpc_url` overriding it, `none` turning lookups off); then the resolver, built
 * from a config loaded WITHOUT rpc_url whose default table points Base Sepolia's id at the local anvil (no network
 * access in tests), grants a purchase whose money moved on chain. Also: unconfirmed records are dropped 7 days after
 * their window (item 9), so they cannot fill the store.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address } from 'viem';
import { type X402Config } from '../../src/config/index.ts';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { X402Method } from '../../src/payments/exact/x402-exact.ts';
import type { Grant, Session } from '../../src/sessions/index.ts';
import { DEFAULT_RPC_URLS, X402Store, type PurchaseRecord } from '../../src/x402/index.ts';
import { STORE_FILE, UNCONFIRMED_KEEP_SECONDS } from '../../src/x402/store.ts';
import { signAuthorization, startChain, submitAuthorization, type TestChain, type TestToken } from '../chain/index.ts';

const test = suite("x402: the network's default chain endpoint");
const PRICE = 10_000n;
const MAC = '02:00:00:00:0d:01';
let chain: TestChain;
let usdc: TestToken;
let payTo: Address;
const dirs: string[] = [];

function x402Text(network: string, rpc?: string): string {
  return `
config sluice 'main'
\toption state_dir '/tmp/unused'

config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${PRICE}'
\toption asset '0x${'a'.repeat(40)}'
\toption max_steps '100'

config x402 'x402'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:4/'
\toption network '${network}'
\toption pay_to '0x${'b'.repeat(40)}'
\toption token_name 'USDC'
\toption timeout '6'
${rpc === undefined ? '' : `\toption rpc_url '${rpc}'\n`}`;
}

const x402Of = (text: string, rpcDefaults?: Record<string, string>): X402Config =>
  configFromUci(parseUci(text, 'test'), rpcDefaults ? { rpcDefaults } : {}).x402;

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  payTo = chain.newAccount().address;
});

test.after(async () => {
  await chain?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test(
  "the loader: no rpc_url is the network's public endpoint (Base, Base Sepolia); rpc_url overrides it; none " +
    'turns lookups off',
  () => {
    assert.equal(DEFAULT_RPC_URLS, {
      'eip155:8453': 'https://mainnet.base.org',
      'eip155:84532': 'https://sepolia.base.org',
    });
    const pick = (c: X402Config) => [c.rpcUrl, c.rpcUrlSource];
    assert.equal(pick(x402Of(x402Text('base'))), ['https://mainnet.base.org', 'network-default']);
    assert.equal(pick(x402Of(x402Text('eip155:8453'))), ['https://mainnet.base.org', 'network-default']);
    assert.equal(pick(x402Of(x402Text('base-sepolia'))), ['https://sepolia.base.org', 'network-default']);
    assert.equal(pick(x402Of(x402Text('base', 'https://rpc.example/key'))), ['https://rpc.example/key', 'option']);
    assert.equal(pick(x402Of(x402Text('base', 'none'))), ['', 'none']);
    assert.equal(pick(x402Of(x402Text('polygon'))), ['', 'none'], 'no default for a network sluice has none for');
    assert.throws(() => x402Of(x402Text('base', 'nothing')), /rpc_url/);
  },
);

/** A purchase sent to /settle whose answer was lost (the record a crash or a timeout leaves), after the money moved. */
async function lostAnswer(stateDir: string): Promise<PurchaseRecord> {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 1_000_000n);
  const { authorization, signature } = await signAuthorization(buyer, usdc, { to: payTo, value: PRICE });
  await submitAuthorization(chain, usdc, chain.deployer, { authorization, signature });
  assert.is((await usdc.balanceOf(payTo)) >= PRICE, true, 'the money reached pay_to');
  const record: PurchaseRecord = {
    key: `${buyer.address.toLowerCase()}:${authorization.nonce.toLowerCase()}`,
    state: 'settling',
    validBefore: authorization.validBefore,
    at: Date.now() - 5000,
    network: 'eip155:84532',
    asset: usdc.address.toLowerCase(),
    value: PRICE.toString(),
    payTo: payTo.toLowerCase(),
    mac: MAC,
    plan: 'wifi',
    metric: 'seconds',
    steps: '1',
    allotment: '60',
  };
  writeFileSync(join(stateDir, STORE_FILE), `${JSON.stringify({ version: 1, records: [record] })}\n`);
  return record;
}

function grantsSeen(): {
  grants: Grant[];
  port: { activate(g: Grant): Promise<{ session: Session; toppedUp: boolean }>; isApplied(): boolean };
} {
  const grants: Grant[] = [];
  return {
    grants,
    port: {
      activate: async (g) => {
        grants.push(g);
        return { session: {} as Session, toppedUp: false };
      },
      isApplied: () => false,
    },
  };
}

for (const [title, rpc, granted] of [
  [
    'no rpc_url: the default endpoint (here the local chain) proves the transfer, the payer is granted',
    undefined,
    true,
  ],
  ['rpc_url none: no lookup, not granted (the facilitator is unreachable too)', 'none', false],
] as const) {
  test(title, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sluice-x402-default-'));
    dirs.push(stateDir);
    const record = await lostAnswer(stateDir);
    // Base Sepolia's id on anvil: the default table says where its public endpoint is; the test's points at anvil.
    const config = {
      ...x402Of(x402Text('eip155:84532', rpc), { 'eip155:84532': chain.rpcUrl }),
      payTo: payTo.toLowerCase(),
    };
    assert.is(config.rpcUrl, rpc === undefined ? chain.rpcUrl : '');
    const seen = grantsSeen();
    const method = await X402Method.open({ config, stateDir, sessions: seen.port });
    try {
      const report = await method.resolvePending();
      assert.is(report.granted, granted ? 1 : 0, JSON.stringify(report));
      assert.equal(
        seen.grants.map((g) => [g.mac, g.payment?.reference, g.allotment]),
        granted ? [[MAC, record.key, 60n]] : [],
      );
    } finally {
      await method.close();
    }
  });
}

test(
  'unconfirmed records are dropped 7 days past their window (logged), not kept for ever; applied ones after the ' +
    'window',
  async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sluice-x402-prune-'));
    dirs.push(stateDir);
    const store = await X402Store.open(stateDir);
    const base = {
      at: 0,
      network: 'eip155:84532',
      asset: '0x',
      value: '1',
      mac: MAC,
      plan: 'wifi',
      metric: 'seconds' as const,
      steps: '1',
      allotment: '60',
    };
    await store.put({ ...base, key: 'u', state: 'unconfirmed', validBefore: '1000' });
    await store.put({ ...base, key: 'a', state: 'applied', validBefore: '1000' });
    await store.put({ ...base, key: 's', state: 'settling', validBefore: '1000' });
    assert.equal(
      store.prune(1000n + 61n).map((r) => r.key),
      ['a'],
    );
    assert.equal(
      store.prune(1000n + 60n + UNCONFIRMED_KEEP_SECONDS).map((r) => r.key),
      [],
      'kept for the full 7 days',
    );
    assert.equal(
      store.prune(1000n + 61n + UNCONFIRMED_KEEP_SECONDS).map((r) => r.key),
      ['u'],
    );
    assert.equal(
      store.list().map((r) => r.key),
      ['s'],
      "a settling record is the resolver's to decide, never dropped",
    );
  },
);

test.run();
