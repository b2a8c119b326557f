// `npm run bench -- x402 [--verify N] [--buyers 20] [--each 5]`
// 1. Local verification cost per purchase: parse + terms + signature recovery (viem) on N distinct signed payloads,
//    on one core, split into the part without the signature and the recovery itself.
// 2. End to end: the real daemon (dist/sluice.mjs) with x402 enabled, the test facilitator (@x402/core + @x402/evm)
//    settling on anvil; `buyers` concurrent buyers each making `each` purchases over ubus (distinct MACs). Prints
//    purchases/s, purchase latency p50/p99, and a `stats` call every 50 ms during the run (p50/p99) to show the
//    main thread stays responsive. Prints figures; asserts nothing.
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { startChain, signAuthorization } from '../test/chain/index.ts';
import { startFacilitator } from '../test/chain/facilitator.ts';
import { DaemonLab } from '../test/daemon/harness.ts';
import { timePlanSection, x402Section } from '../test/helpers/uci-sections.ts';
import { parseExactPayment } from '../src/x402/payload.ts';
import { checkTerms, verifyLocally, type LocalRequirements } from '../src/x402/verify.ts';

const arg = (argv: string[], name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
};
const f = (x: number): string => x.toFixed(x < 10 ? 2 : 1);

export default async function main(argv: string[]): Promise<void> {
  const n = Number(arg(argv, '--verify', '400'));
  const buyers = Number(arg(argv, '--buyers', '20'));
  const each = Number(arg(argv, '--each', '5'));
  console.log(
    `[bench] x402: load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (1/5/15 min) before the run`,
  );

  const chain = await startChain({ chainId: 84532 });
  try {
    const usdc = await chain.deployToken({ name: 'USDC', version: '2' });
    const payTo = chain.newAccount().address;

    // 1. Local verification.
    const buyer = chain.newAccount();
    const payloads = [];
    for (let i = 0; i < n; i++) {
      const { authorization, signature } = await signAuthorization(buyer, usdc, { to: payTo, value: 10_000n });
      payloads.push({
        x402Version: 2,
        accepted: {
          scheme: 'exact',
          network: 'eip155:84532',
          amount: '10000',
          asset: usdc.address,
          payTo,
          maxTimeoutSeconds: 300,
          extra: { name: 'USDC', version: '2' },
        },
        payload: { signature, authorization },
      });
    }
    const req = (): LocalRequirements => ({
      network: 'eip155:84532',
      chainId: 84532,
      asset: usdc.address.toLowerCase() as `0x${string}`,
      domain: { name: 'USDC', version: '2' },
      payTo: payTo.toLowerCase() as `0x${string}`,
      price: 10_000n,
      now: BigInt(Math.floor(Date.now() / 1000)),
      marginSeconds: 6n,
      maxTimeoutSeconds: 300n,
    });
    for (const p of payloads.slice(0, 20)) await verifyLocally(parseExactPayment(p), req()); // warm up
    const cheap: number[] = [];
    const full: number[] = [];
    for (const p of payloads) {
      const t0 = performance.now();
      const parsed = parseExactPayment(p);
      checkTerms(parsed, req());
      const t1 = performance.now();
      await verifyLocally(parsed, req());
      const t2 = performance.now();
      cheap.push(t1 - t0);
      full.push(t2 - t1);
    }
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    console.log(
      `[bench] x402 local verification, ${n} payloads: parse+terms p50 ${f(pct(cheap, 50) * 1000)} µs; full ` +
        `check incl. signature recovery p50 ${f(pct(full, 50))} ms, p99 ${f(pct(full, 99))} ms, ` +
        `mean ${f(sum(full) / n)} ms (≈ ${Math.round(1000 / (sum(full) / n))}/s on one core)`,
    );

    // 2. End to end through the daemon.
    const facilitator = await startFacilitator(chain);
    const lab = await DaemonLab.create({
      pollInterval: 1,
      extraConfig:
        timePlanSection({ asset: usdc.address, price: 10000 }) +
        x402Section({ facilitatorUrl: facilitator.url, payTo, timeoutS: 30 }),
    });
    try {
      const total = buyers * each;
      const macs = Array.from(
        { length: total },
        (_, i) => `02:00:00:0d:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
      );
      macs.forEach((mac, i) => lab.portal.addClient(mac, `10.2.${i >> 8}.${(i & 255) + 1}`));
      await lab.startDaemon();
      const accounts = Array.from({ length: buyers }, () => chain.newAccount());
      for (const a of accounts) await usdc.mint(a.address, 10_000_000n);
      // Sign everything first: the bench measures sluice + facilitator + chain, not the buyers' wallets.
      const jobs = await Promise.all(
        accounts.map(async (a, b) =>
          Promise.all(
            Array.from({ length: each }, async (_, k) => {
              const { authorization, signature } = await signAuthorization(a, usdc, { to: payTo, value: 10_000n });
              return {
                mac: macs[b * each + k]!,
                payload: {
                  x402Version: 2,
                  accepted: {
                    scheme: 'exact',
                    network: 'eip155:84532',
                    amount: '10000',
                    asset: usdc.address,
                    payTo,
                    maxTimeoutSeconds: 300,
                    extra: { name: 'USDC', version: '2' },
                  },
                  payload: { signature, authorization },
                },
              };
            }),
          ),
        ),
      );
      const statsLatency: number[] = [];
      let running = true;
      const prober = (async () => {
        while (running) {
          const t = performance.now();
          await lab.call('stats');
          statsLatency.push(performance.now() - t);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const latency: number[] = [];
      let failed = 0;
      const t0 = performance.now();
      await Promise.all(
        jobs.map(async (list) => {
          for (const job of list) {
            const t = performance.now();
            const r = await lab.callStatus('purchase', {
              mac: job.mac,
              plan: 'wifi',
              payment: { method: 'x402', payload: job.payload },
            } as never);
            latency.push(performance.now() - t);
            if (r.status !== 0) {
              failed++;
              if (failed <= 3) console.log(`[bench] purchase failed: ${JSON.stringify(r.data)}`);
            }
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      running = false;
      await prober;
      const received = await usdc.balanceOf(payTo);
      console.log(
        `[bench] x402 end to end: ${total} purchases by ${buyers} concurrent buyers in ${f(seconds)} s ` +
          `= ${f((total - failed) / seconds)} purchases/s (${failed} failed); purchase latency ` +
          `p50 ${f(pct(latency, 50))} ms, p99 ${f(pct(latency, 99))} ms; pay_to received ${received} ` +
          `(expected ${BigInt(total - failed) * 10_000n})`,
      );
      console.log(
        `[bench] x402 main thread during the run: stats call p50 ${f(pct(statsLatency, 50))} ms, ` +
          `p99 ${f(pct(statsLatency, 99))} ms, max ${f(Math.max(...statsLatency))} ms (${statsLatency.length} ` +
          'calls)',
      );
      console.log(
        `[bench] x402: load ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')} after the run`,
      );
    } finally {
      await lab.close();
      await facilitator.stop();
    }
  } finally {
    await chain.stop();
  }
}
