// tier: chain
/**
 * viem (with noble's curves) is not loaded by an idle daemon. It is its own file, dist/evm.mjs, which
 * the daemon imports on the first EVM signature it checks (src/x402/evm-loader.ts; scripts/build.mjs); mqtt.js
 * likewise (dist/mqtt.mjs, on the MQTT sink's first connection). What is checked: sluice.mjs holds none of their code;
 * a daemon whose evm.mjs is missing starts and serves, refuses an x402 purchase with ERR_MODULE_LOAD (nothing charged,
 * no crash) and leaves out a method that needs viem to open (batch-settlement), logged with that code; once the file is
 * back, the next purchase loads it (a failed load is not kept).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateKeyToAccount } from 'viem/accounts';
import { signAuthorization } from '../chain/index.ts';
import { batchSettlementSection, x402Section } from '../helpers/uci-sections.ts';
import { BUNDLE, DaemonLab, ensureBuilt } from './harness.ts';

const DIST = join(BUNDLE, '..');
const ASSET = '0x036CbD53842c5426634e7929541eC2318f3dCF7e' as const;
const PAY_TO = '0x000000000000000000000000000000000000dEaD' as const;
const buyer = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');

const CONFIG =
  `
config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '10000'
\toption asset '${ASSET}'

${x402Section({ facilitatorUrl: 'http://127.0.0.1:8', payTo: PAY_TO, timeoutS: 1 })}` +
  batchSettlementSection({ facilitatorUrl: 'http://127.0.0.1:8' });

const VIEM = /node_modules\/(viem|@noble|abitype|ox)\//;

test("sluice.mjs holds none of viem's, noble's or mqtt.js's code; evm.mjs and mqtt.mjs do", () => {
  ensureBuilt();
  const meta = JSON.parse(readFileSync(join(DIST, 'meta.json'), 'utf8')) as Record<string, string[]>;
  assert.equal(
    meta['dist/sluice.mjs']!.filter((i) => VIEM.test(i)),
    [],
    'viem in sluice.mjs',
  );
  assert.ok(
    meta['dist/evm.mjs']!.some((i) => /node_modules\/viem\//.test(i)),
    'viem in evm.mjs',
  );
  assert.ok(
    meta['dist/evm.mjs']!.every((i) => !i.startsWith('src/') || i === 'src/x402/evm.ts'),
    'no sluice code in evm.mjs (no class twice)',
  );
  assert.equal(
    meta['dist/sluice.mjs']!.filter((i) => /node_modules\/(mqtt|mqtt-packet|ws)\//.test(i)),
    [],
    'mqtt.js in sluice.mjs',
  );
  assert.ok(
    meta['dist/mqtt.mjs']!.some((i) => /node_modules\/mqtt\//.test(i)),
    'mqtt.js in mqtt.mjs',
  );
  assert.ok(
    meta['dist/mqtt.mjs']!.every((i) => !i.startsWith('src/')),
    'no sluice code in mqtt.mjs',
  );
});

async function exactPayment(value: bigint) {
  const { authorization, signature } = await signAuthorization(
    buyer,
    { address: ASSET, name: 'USDC', version: '2', chainId: 84532 },
    { to: PAY_TO, value },
  );
  return {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: 'eip155:84532',
      amount: value.toString(),
      asset: ASSET,
      payTo: PAY_TO,
      maxTimeoutSeconds: 300,
      extra: { name: 'USDC', version: '2' },
    },
    payload: { signature, authorization },
  };
}

test(
  'evm.mjs missing: the daemon serves, an x402 purchase is ERR_MODULE_LOAD, batch-settlement is left out; the ' +
    'file back, the next purchase loads it',
  async () => {
    ensureBuilt();
    const copy = mkdtempSync(join(tmpdir(), 'sluice-noevm-'));
    cpSync(DIST, copy, { recursive: true });
    renameSync(join(copy, 'evm.mjs'), join(copy, 'evm.mjs.away'));
    const lab = await DaemonLab.create({
      bundle: join(copy, 'sluice.mjs'),
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: CONFIG,
    });
    try {
      lab.portal.addClient('02:00:00:00:0e:01', '10.0.4.1');
      lab.portal.addClient('02:00:00:00:0e:02', '10.0.4.2');
      await lab.startDaemon();
      assert.match(lab.output, /payment method batch-settlement unavailable: its code cannot be loaded/);
      assert.match(lab.output, /ERR_MODULE_LOAD/);
      const purchase = async () =>
        lab.callStatus('purchase', {
          mac: '02:00:00:00:0e:01',
          plan: 'wifi',
          payment: { method: 'x402', payload: await exactPayment(10_000n) },
        } as never);
      const code = (r: { data: Record<string, unknown> | undefined }) =>
        (r.data?.error as { code?: string } | undefined)?.code;
      assert.is(code(await purchase()), 'ERR_MODULE_LOAD');
      assert.is(lab.daemon?.exitCode, null, 'the daemon runs');
      // The rest serves: a grant opens a gate.
      assert.is((await lab.callStatus('grant', { mac: '02:00:00:00:0e:02', seconds: 600 })).status, 0);
      await lab.waitFor(() => lab.clientState('02:00:00:00:0e:02') === 'Authenticated', 30_000, 'gate open');
      // The file back: the signature is checked (viem loads), and the purchase gets as far as the facilitator, which
      // is not there.
      renameSync(join(copy, 'evm.mjs.away'), join(copy, 'evm.mjs'));
      assert.is(code(await purchase()), 'ERR_X402_FACILITATOR_UNAVAILABLE');
    } finally {
      await lab.close();
      rmSync(copy, { recursive: true, force: true });
    }
    assert.ok(!existsSync(copy));
  },
);

test.run();
