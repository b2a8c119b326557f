// tier: daemon
/**
 * With the real daemon binary: a damaged x402.json or escrow.json used to stop the whole daemon at
 * start. Now only that payment method is unavailable (an error line with ERR_X402_STORE / ERR_ESCROW_LEDGER), the file
 * is left as it was, and the daemon serves: grants, the meter's ticks, the other payment method. One
 * damaged record in an otherwise good x402.json or upto.json is damage too (it was skipped: a nonce forgotten, its
 * payload accepted again), not an empty slot.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonLab } from './harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection } from '../helpers/uci-sections.ts';

const PAYMENT_CONFIG = `
config x402 'x402'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:8'
\toption network 'eip155:84532'
\toption pay_to '0x${'1'.repeat(40)}'

config escrow 'escrow'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:8'
\toption network 'eip155:84532'
\toption address '0x${'2'.repeat(40)}'
\toption seller '0x${'3'.repeat(40)}'
`;

const code = (r: { data: Record<string, unknown> | undefined }) =>
  (r.data?.error as { code?: string } | undefined)?.code;
const purchaseWith = (lab: DaemonLab, method: string) =>
  lab.callStatus('purchase', { mac: '02:00:00:00:0d:02', plan: 'data', payment: { method, payload: {} } } as never);

test(
  'a damaged x402.json or escrow.json: that method is unavailable (logged with its code), the file untouched, ' +
    'the daemon serves',
  async () => {
    const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true, extraConfig: PAYMENT_CONFIG });
    try {
      const state = join(lab.dir, 'state');
      mkdirSync(state, { recursive: true });
      writeFileSync(join(state, 'x402.json'), '{"version":1,"records":[{"key":"0xab');
      writeFileSync(
        join(state, 'escrow.json'),
        '[{"sessionId":"0x01","mac":"02:00:00:00:0d:01","buyer":"0x0","maxUnits":"ten"}]',
      );
      await lab.startDaemon();
      assert.match(lab.output, /ERR_X402_STORE/);
      assert.match(lab.output, /ERR_ESCROW_LEDGER/);
      // Both methods are out; the purchase names the one that is not there.
      assert.is(code(await purchaseWith(lab, 'x402')), 'ERR_UNKNOWN_PAYMENT_METHOD');
      assert.is(code(await purchaseWith(lab, 'x402-session')), 'ERR_UNKNOWN_PAYMENT_METHOD');
      // The rest serves: a grant opens a gate, and the meter ticks.
      lab.portal.addClient('02:00:00:00:0d:01', '10.0.3.1');
      assert.is((await lab.callStatus('grant', { mac: '02:00:00:00:0d:01', seconds: 600 })).status, 0);
      await lab.waitFor(() => lab.clientState('02:00:00:00:0d:01') === 'Authenticated', 30_000, 'gate open');
      const ticks = async () => ((await lab.call('stats')).meter as { ticks_ok: number }).ticks_ok;
      const from = await ticks();
      await lab.waitFor(async () => (await ticks()) > from, 30_000, 'the meter ticks');
      assert.is(
        readFileSync(join(state, 'x402.json'), 'utf8'),
        '{"version":1,"records":[{"key":"0xab',
        'x402.json left as it was',
      );
      assert.match(readFileSync(join(state, 'escrow.json'), 'utf8'), /"maxUnits":"ten"/, 'escrow.json left as it was');

      // x402.json moved away by the operator: after a restart x402 is back, the escrow method still out.
      await lab.stopDaemon('SIGTERM');
      rmSync(join(state, 'x402.json'));
      await lab.startDaemon();
      assert.not.match(lab.output, /ERR_X402_STORE/);
      assert.match(lab.output, /ERR_ESCROW_LEDGER/);
      assert.is.not(code(await purchaseWith(lab, 'x402')), 'ERR_UNKNOWN_PAYMENT_METHOD', 'x402 is available again');
      assert.is(code(await purchaseWith(lab, 'x402-session')), 'ERR_UNKNOWN_PAYMENT_METHOD');
    } finally {
      await lab.close();
    }
  },
);

const UPTO_CONFIG = `
config upto 'upto'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:8'
\toption network 'eip155:84532'
\toption pay_to '0x${'4'.repeat(40)}'
`;

test(
  'one damaged record in x402.json or upto.json (no key / no reference): across a restart that method alone is ' +
    'unavailable (503, stats http.unavailable, the log says what to do), the file untouched; escrow serves; moved ' +
    'aside, both are back',
  async () => {
    const port = await freePort();
    const lab = await DaemonLab.create({
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: PAYMENT_CONFIG + UPTO_CONFIG + httpSection(port),
    });
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const unavailable = async () => ((await lab.call('stats')) as Record<string, any>).http.unavailable as string[];
    try {
      lab.portal.addClient('02:00:00:00:0d:03', '127.0.0.1');
      await lab.startDaemon();
      assert.equal(await unavailable(), [], 'all three open on an empty state');
      await lab.stopDaemon('SIGTERM');
      const state = join(lab.dir, 'state');
      const good = {
        key: `0x${'a'.repeat(40)}:0x${'1'.repeat(64)}`,
        state: 'applied',
        validBefore: '9999999999',
        at: 1,
        network: 'eip155:84532',
        asset: `0x${'5'.repeat(40)}`,
        value: '1000',
        mac: '02:00:00:00:0d:09',
        plan: 'data',
        metric: 'bytes',
        steps: '1',
        allotment: '1048576',
      };
      // A record whose key was lost (a bit flipped in `"key"`): damage, never a record skipped and its nonce forgotten.
      const x402 = JSON.stringify({
        version: 1,
        records: [good, { ...good, key: undefined, kye: good.key.replace('1', '2') }],
      });
      writeFileSync(join(state, 'x402.json'), x402);
      const upto = JSON.stringify({
        version: 1,
        kind: 'upto',
        records: [
          { reference: 'r1', state: 'released' },
          { referense: 'r2', state: 'open' },
        ],
      });
      writeFileSync(join(state, 'upto.json'), upto);
      // Files from before tables were sealed: a seal left beside them would refuse them whole, before any record.
      for (const file of ['x402.json', 'upto.json']) rmSync(join(state, `${file}.seal`), { force: true });
      await lab.startDaemon();
      assert.match(
        lab.output,
        new RegExp(
          /payment method x402 unavailable: its state file cannot be read back \(left as it is; mend or move it, then /
            .source + /restart\).*ERR_X402_STORE.*record 1 is damaged/.source,
        ),
      );
      assert.match(
        lab.output,
        /payment method upto unavailable: .*mend or move it, then restart.*ERR_UPTO_STORE.*record 1 is damaged/,
      );
      assert.equal(await unavailable(), ['x402', 'upto']);
      const buy = await get('/buy?plan=data');
      assert.is(buy.status, 503, JSON.stringify(buy.body));
      assert.is(buy.body.error.code, 'ERR_PAYMENT_METHOD_UNAVAILABLE');
      assert.equal((await get('/')).body.methods.unavailable, ['x402', 'upto']);
      assert.is(code(await purchaseWith(lab, 'x402')), 'ERR_UNKNOWN_PAYMENT_METHOD');
      assert.is(code(await purchaseWith(lab, 'upto')), 'ERR_UNKNOWN_PAYMENT_METHOD');
      // The escrow method is there (refused for its payload, not as unknown), and so is the rest.
      assert.is.not(code(await purchaseWith(lab, 'x402-session')), 'ERR_UNKNOWN_PAYMENT_METHOD');
      assert.is(readFileSync(join(state, 'x402.json'), 'utf8'), x402, 'x402.json left as it was');
      assert.is(readFileSync(join(state, 'upto.json'), 'utf8'), upto, 'upto.json left as it was');

      await lab.stopDaemon('SIGTERM');
      rmSync(join(state, 'x402.json'));
      rmSync(join(state, 'upto.json'));
      await lab.startDaemon();
      assert.equal(await unavailable(), []);
    } finally {
      await lab.close();
    }
  },
);

test.run();
