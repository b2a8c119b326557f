// `npm run bench -- batch [--vouchers 2000] [--sessions 1,10,100] [--daemon 5]`
// x402 `batch-settlement` figures (docs/performance.md), on anvil with @x402/evm's own facilitator
// and the scheme's test contracts at their canonical addresses (test/chain/), vouchers signed by @x402/evm's client:
// 1. voucher verification per second: parse + channel terms (config hash) + ECDSA recovery of the payerAuthorizer,
//    what a returning customer's voucher costs the router when its mirrored channel is fresh (no facilitator call);
// 2. transactions and gas per session when N sessions share one claim batch: N channels deposited and charged, then
//    ONE settler pass (one claim for all, one settle, a refund per channel);
// 3. through the real daemon (dist/sluice.mjs): ubus `purchase` with a deposit → gate open (the deposit's /verify and
//    /settle on anvil included), and the refund latency: `terminate` → the customer's refund on chain (policy at-end;
//    the charge's claim waits CLAIM_BATCH_WINDOW_MS for others to share its transaction).
// Prints figures; asserts nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Address, Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import {
  computeChannelId,
  createBatchSettlementEIP3009DepositPayload,
  signVoucher,
} from '@x402/evm/batch-settlement/client';
import { startChain, type TestChain, type TestToken } from '../test/chain/index.ts';
import { deployBatchStack } from '../test/chain/batch.ts';
import { startFacilitator, type TestFacilitator } from '../test/chain/facilitator.ts';
import { DaemonLab } from '../test/daemon/harness.ts';
import { BatchChannelStore } from '../src/payments/batch-settlement/batch-channels.ts';
import type { Quote } from '../src/payments/index.ts';
import { BatchSettlementMethod } from '../src/payments/batch-settlement/x402-batch.ts';
import { BatchSettler } from '../src/payments/batch-settlement/x402-batch-settler.ts';
import { checkChannel, parseBatchPayment, verifyVoucher } from '../src/x402/index.ts';

const NET = 'eip155:84532';
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const DEPOSIT = 1_000_000n;
const arg = (argv: string[], name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
};
const f = (x: number): string => x.toFixed(x < 10 ? 2 : 1);
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

interface Env {
  chain: TestChain;
  usdc: TestToken;
  facilitator: TestFacilitator;
  authorizer: Address;
  receiver: Address;
}

function quote(usdc: TestToken): Quote {
  return {
    plan: 'wifi',
    metric: 'seconds',
    steps: STEPS,
    allotment: STEPS * 60n,
    price: STEPS * STEP_PRICE,
    asset: usdc.address.toLowerCase(),
    currency: 'USDC',
    decimals: 6,
    stepSize: 60n,
    pricePerStep: STEP_PRICE,
  };
}

async function verification(env: Env, n: number): Promise<void> {
  const { chain, usdc } = env;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-batch-'));
  const { method } = await methodFor(env, dir);
  rmSync(dir, { recursive: true, force: true });
  const requirements = method.requirements(usdc.address, STEPS * STEP_PRICE);
  const payloads: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const key = chain.newAccount();
    const config = {
      payer: chain.newAccount().address,
      payerAuthorizer: key.address,
      receiver: env.receiver,
      receiverAuthorizer: env.authorizer,
      token: usdc.address,
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(63)}1`,
    };
    const voucher = await signVoucher(
      key as never,
      computeChannelId(config as never, NET),
      String(BigInt(i + 1) * STEP_PRICE),
      NET,
    );
    payloads.push({
      x402Version: 2,
      accepted: requirements,
      payload: { type: 'voucher', channelConfig: config, voucher },
    });
  }
  const terms = {
    chainId: chain.chainId,
    receiver: env.receiver,
    receiverAuthorizer: env.authorizer,
    token: usdc.address as Address,
    withdrawDelay: 900,
  };
  const each: number[] = [];
  for (const p of payloads.slice(0, 50)) {
    const b = parseBatchPayment(p);
    checkChannel(b, terms);
    await verifyVoucher(b.config, b.voucher, chain.chainId);
  }
  const t0 = performance.now();
  for (const p of payloads) {
    const s = performance.now();
    const b = parseBatchPayment(p);
    checkChannel(b, terms);
    await verifyVoucher(b.config, b.voucher, chain.chainId);
    each.push(performance.now() - s);
  }
  const total = performance.now() - t0;
  console.log(
    `[bench] batch voucher verification, ${n} vouchers (parse + config hash + ECDSA recovery, one core): ` +
      `${Math.round((n * 1000) / total)}/s; p50 ${f(pct(each, 50))} ms, p99 ${f(pct(each, 99))} ms`,
  );
}

async function methodFor(env: Env, dir: string, refund: 'at-end' | 'on-request' = 'at-end') {
  const store = await BatchChannelStore.open(dir);
  const method = new BatchSettlementMethod(
    {
      enabled: true,
      network: NET,
      chainId: env.chain.chainId,
      facilitatorUrl: env.facilitator.url,
      receiver: env.receiver.toLowerCase(),
      receiverAuthorizer: env.authorizer.toLowerCase(),
      withdrawDelay: 900,
      tokenName: env.usdc.name,
      tokenVersion: env.usdc.version,
      refund,
      refundIdleMs: 0,
      timeoutMs: 60_000,
    },
    { store, mirrorFreshMs: 0 },
  );
  return { method, store };
}

async function gasOf(chain: TestChain, hashes: string[]): Promise<bigint> {
  let sum = 0n;
  for (const h of hashes) sum += (await chain.publicClient.getTransactionReceipt({ hash: h as Hex })).gasUsed;
  return sum;
}

async function claimBatch(env: Env, n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-batch-'));
  try {
    const { method, store } = await methodFor(env, dir);
    const settler = new BatchSettler({ method, store });
    const q = quote(env.usdc);
    const deposits: string[] = [];
    const refs: string[] = [];
    for (let i = 0; i < n; i++) {
      const wallet: PrivateKeyAccount = env.chain.newAccount();
      const voucherKey = env.chain.newAccount();
      await env.usdc.mint(wallet.address, DEPOSIT);
      const config = {
        payer: wallet.address,
        payerAuthorizer: voucherKey.address,
        receiver: env.receiver,
        receiverAuthorizer: env.authorizer,
        token: env.usdc.address,
        withdrawDelay: 900,
        salt: `0x${'0'.repeat(63)}1`,
      };
      const req = method.requirements(env.usdc.address, q.price);
      const built = await createBatchSettlementEIP3009DepositPayload(
        wallet as never,
        2,
        req as never,
        config as never,
        DEPOSIT.toString(),
        q.price.toString(),
        voucherKey as never,
      );
      const ctx = {
        quote: q,
        request: {
          mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
          payment: { method: 'batch-settlement', payload: { x402Version: 2, accepted: req, payload: built.payload } },
        },
        now: Date.now(),
      };
      await method.precheck(ctx);
      const ref = await method.authorize(ctx);
      deposits.push(String(method.settlementOf(ref.reference)?.transaction ?? ''));
      refs.push(ref.reference);
    }
    for (const ref of refs) await method.charge(ref, 150n); // 3 steps each
    const t0 = performance.now();
    const pass = await settler.pass();
    const passMs = performance.now() - t0;
    const claimGas = await gasOf(env.chain, pass.claimTransactions);
    const settleGas = await gasOf(
      env.chain,
      pass.settled.map((s) => s.transaction),
    );
    const refundGas = await gasOf(
      env.chain,
      pass.refunded.map((r) => r.transaction),
    );
    const depositGas = await gasOf(
      env.chain,
      deposits.filter((d) => d !== ''),
    );
    const txs = deposits.length + pass.claimTransactions.length + pass.settled.length + pass.refunded.length;
    const per = (g: bigint): string => (Number(g) / n).toFixed(0);
    console.log(
      `[bench] batch N=${n} sessions sharing one claim batch: ${txs} transactions (${deposits.length} ` +
        `deposits, ${pass.claimTransactions.length} claim, ` +
        `${pass.settled.length} settle, ${pass.refunded.length} refunds) = ${(txs / n).toFixed(2)}/session; ` +
        `gas per session: deposit ${per(depositGas)}, ` +
        `claim ${per(claimGas)}, settle ${per(settleGas)}, refund ${per(refundGas)}, ` +
        `total ${per(depositGas + claimGas + settleGas + refundGas)}; ` +
        `claim tx ${claimGas} gas for ${n}; the pass took ${f(passMs)} ms`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function daemonRuns(env: Env, runs: number): Promise<void> {
  const lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: `
config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${STEP_PRICE}'
\toption asset '${env.usdc.address}'
\toption currency 'USDC'
\toption decimals '6'
\toption max_steps '100'

config batch_settlement 'batch_settlement'
\toption enabled '1'
\toption facilitator_url '${env.facilitator.url}'
\toption network '${NET}'
\toption receiver '${env.receiver}'
\toption receiver_authorizer '${env.authorizer}'
\toption withdraw_delay '900'
\toption refund 'at-end'
\toption token_name 'USDC'
\toption token_version '2'
`,
  });
  try {
    await lab.startDaemon();
    const toGate: number[] = [];
    const refund: number[] = [];
    const price = STEPS * STEP_PRICE;
    for (let i = 0; i < runs; i++) {
      const mac = `02:00:00:00:0d:${i.toString(16).padStart(2, '0')}`;
      lab.portal.addClient(mac, `10.0.3.${i + 1}`);
      const wallet = env.chain.newAccount();
      const voucherKey = env.chain.newAccount();
      await env.usdc.mint(wallet.address, DEPOSIT);
      const requirements = {
        scheme: 'batch-settlement',
        network: NET,
        amount: price.toString(),
        asset: env.usdc.address,
        payTo: env.receiver,
        maxTimeoutSeconds: 3600,
        extra: { receiverAuthorizer: env.authorizer, withdrawDelay: 900, name: 'USDC', version: '2' },
      };
      const config = {
        payer: wallet.address,
        payerAuthorizer: voucherKey.address,
        receiver: env.receiver,
        receiverAuthorizer: env.authorizer,
        token: env.usdc.address,
        withdrawDelay: 900,
        salt: `0x${'0'.repeat(64)}` as Hex,
      };
      const built = await createBatchSettlementEIP3009DepositPayload(
        wallet as never,
        2,
        requirements as never,
        config as never,
        DEPOSIT.toString(),
        price.toString(),
        voucherKey as never,
      );
      const t0 = performance.now();
      const r = await lab.callStatus('purchase', {
        mac,
        plan: 'wifi',
        steps: String(STEPS),
        payment: {
          method: 'batch-settlement',
          payload: { x402Version: 2, accepted: requirements, payload: built.payload },
        },
      } as never);
      if (r.status !== 0) throw new Error(`purchase refused: ${JSON.stringify(r.data)}`);
      await lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, 'gate open');
      toGate.push(performance.now() - t0);
      const t1 = performance.now();
      const t = await lab.callStatus('terminate', { mac });
      if (t.status !== 0) throw new Error(`terminate refused: ${JSON.stringify(t.data)}`);
      const used = BigInt(String((t.data!.session as Record<string, unknown>).used));
      const charge = ((used + 59n) / 60n) * STEP_PRICE;
      await lab.waitFor(
        async () => (await env.usdc.balanceOf(wallet.address)) === DEPOSIT - charge,
        120_000,
        'refund on chain',
      );
      refund.push(performance.now() - t1);
    }
    console.log(
      `[bench] batch through the daemon, ${runs} customers: ubus purchase with a deposit → gate open ` +
        `p50 ${f(pct(toGate, 50))} ms, max ${f(Math.max(...toGate))} ms; ` +
        `terminate → refund on chain (at-end; claim batch window 5 s included) p50 ${f(pct(refund, 50))} ms, ` +
        `max ${f(Math.max(...refund))} ms`,
    );
  } finally {
    await lab.close();
  }
}

export default async function main(argv: string[]): Promise<void> {
  const vouchers = Number(arg(argv, '--vouchers', '2000'));
  const sizes = arg(argv, '--sessions', '1,10,100').split(',').map(Number);
  const runs = Number(arg(argv, '--daemon', '5'));
  console.log(`[bench] batch: load ${load()} (1/5/15 min) before the run`);
  const chain = await startChain({ chainId: 84532 });
  let facilitator: TestFacilitator | undefined;
  try {
    const usdc = await chain.deployToken({ name: 'USDC', version: '2' });
    await deployBatchStack(chain);
    facilitator = await startFacilitator(chain, { batchSettlement: { authorizer: chain.newAccount() } });
    const supported = (await (await fetch(`${facilitator.url}/supported`)).json()) as {
      kinds: Array<{ scheme: string; extra?: { receiverAuthorizer?: Address } }>;
    };
    const authorizer = supported.kinds.find((k) => k.scheme === 'batch-settlement')!.extra!.receiverAuthorizer!;
    const env: Env = { chain, usdc, facilitator, authorizer, receiver: chain.newAccount().address };
    await verification(env, vouchers);
    for (const n of sizes) await claimBatch(env, n);
    if (runs > 0) await daemonRuns(env, runs);
    console.log(`[bench] batch: load ${load()} (1/5/15 min) after the run`);
  } finally {
    await facilitator?.stop();
    await chain.stop();
  }
}
