// tier: daemon
/**
 * A payment method added through the list alone: the test-only `stamp` folder (test/plugins/stamp/) and one line, the
 * list the daemon is started with (`[...PAYMENT_PLUGINS, stampPlugin]`). No file of src/ names it, yet the real daemon
 * (in this process, over the embedded ubus broker and the simulated portal's control socket) serves it: its own config
 * section is read (its cards' prefix), its ubus method is on the `sluice` object, a ubus `purchase` buys with it,
 * its LAN route sells through the endpoint's rules (the caller's MAC from the one resolver), and its own error codes
 * answer a malformed and a replayed code with the statuses it declared. Its ubus method and LAN route exist only
 * through the registrars of its register phase (PaymentPlugin.register): it has no static field for them. Its own
 * listener (`stamp.listen`, registered with PluginHost.door) follows reloads, and a reload that moves it says so in
 * `moved` as it says `http.listen`'s. Without the line none of it exists.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../src/daemon.ts';
import { silentLogger } from '../../src/log.ts';
import { PAYMENT_PLUGINS } from '../../src/payments/index.ts';
import { listenNdsctlSocket, PortalModel, portalRequestHandler } from '../../src/sim/index.ts';
import { UbusBroker } from '../../src/ubus/broker/index.ts';
import { Status, UbusClient, UbusStatusError } from '../../src/ubus/index.ts';
import { freePort } from '../helpers/net.ts';
import { stampPlugin } from './stamp/index.ts';

const MAC = '02:00:00:00:5a:01';
const OTHER = '02:00:00:00:5a:02';

async function router(plugins: typeof PAYMENT_PLUGINS) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-stamp-'));
  const ubusSocket = join(dir, 'ubus.sock');
  const portalSocket = join(dir, 'ndsctl.sock');
  const port = await freePort();
  const configPath = join(dir, 'sluice.uci');
  const writeConfig = (stampListen: string) =>
    writeFileSync(
      configPath,
      `
config sluice 'main'
\toption state_dir '${join(dir, 'state')}'
\toption ndsctl_socket '${portalSocket}'
\toption portal 'opennds'
\toption poll_interval '0.5'
\toption ndsctl_timeout '60'

config pricing 'hour'
\toption metric 'seconds'
\toption step_size '3600'
\toption price_per_step '1000'

config http 'http'
\toption listen '127.0.0.1:${port}'

config stamp 'stamp'
\toption prefix 'CARD'
\toption listen '${stampListen}'
`,
    );
  writeConfig('');
  const model = new PortalModel({ flavour: 'opennds' });
  model.addClient(MAC, '127.0.0.1');
  model.addClient(OTHER, '10.0.9.2');
  const portal = await listenNdsctlSocket(portalSocket, portalRequestHandler(model));
  const broker = await UbusBroker.listen({ socketPath: ubusSocket });
  const daemon = await Daemon.start({
    configPath,
    ubusSocket,
    log: silentLogger,
    plugins,
    meterSource: { kind: 'socket', path: portalSocket },
    meterWorker: { path: new URL('../../workers/usage.ts', import.meta.url), execArgv: ['--import', 'tsx'] },
  });
  const client = await UbusClient.connect({ socketPath: ubusSocket, timeoutMs: 20_000 });
  const call = async (method: string, args: Record<string, unknown> = {}) => {
    try {
      return {
        ok: true as const,
        data: (await client.call('sluice', method, args as never)) as Record<string, unknown>,
      };
    } catch (err) {
      return { ok: false as const, error: err as Error & { data?: { error?: { code?: string } } } };
    }
  };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return {
    call,
    post,
    /** The config rewritten with the counter's `stamp.listen`, then ubus `reload`. */
    async reload(stampListen: string) {
      writeConfig(stampListen);
      return (await call('reload')).data as { moved?: string[]; restart_required: string[] };
    },
    async close() {
      client.destroy();
      await daemon.stop();
      await broker.close();
      await portal.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The code of a refused ubus call, with its ubus status: the data reply `{error: {code}}` before the status. */
const codeOf = (r: { ok: boolean; error?: unknown }): [number, string] | null => {
  const e = r.error;
  if (!(e instanceof UbusStatusError)) return null;
  return [e.status, ((e.replies[0] as { error?: { code?: string } } | undefined)?.error?.code ?? '') as string];
};

test('one line in the list serves a method: its section, codes, ubus method, a purchase, its LAN route', async () => {
  const r = await router([...PAYMENT_PLUGINS, stampPlugin]);
  try {
    assert.equal(await r.call('stamp_count'), { ok: true, data: { sold: 0 } });
    const buy = (code: string) => r.call('purchase', { mac: OTHER, plan: 'hour', payment: { method: 'stamp', code } });
    const wrong = await buy('STAMP-1');
    assert.equal(codeOf(wrong), [Status.INVALID_ARGUMENT, 'ERR_STAMP_CODE'], 'its section set the prefix: CARD');
    const bought = await buy('CARD-1');
    assert.ok(bought.ok, JSON.stringify(bought));
    const replayed = await buy('CARD-1');
    assert.equal(codeOf(replayed), [Status.PERMISSION_DENIED, 'ERR_STAMP_PUNCHED'], 'a punched code buys once');

    const lan = await r.post('/stamp', { code: 'CARD-2' });
    assert.is(lan.status, 200, JSON.stringify(lan.body));
    assert.is((lan.body.session as Record<string, unknown>).mac, MAC, "the caller's MAC, from its address");
    const again = await r.post('/stamp', { code: 'CARD-2' });
    assert.equal([again.status, (again.body.error as { code: string }).code], [402, 'ERR_STAMP_PUNCHED']);
    const malformed = await r.post('/stamp', { code: 'CARD-x' });
    assert.equal([malformed.status, (malformed.body.error as { code: string }).code], [400, 'ERR_STAMP_CODE']);
    assert.equal(await r.call('stamp_count'), { ok: true, data: { sold: 2 } });

    const counter = await freePort();
    const on = await r.reload(`127.0.0.1:${counter}`);
    assert.equal([on.restart_required, on.moved], [[], ['stamp.listen']], 'its listener opened: the reply says so');
    const count = await fetch(`http://127.0.0.1:${counter}/`);
    assert.equal(await count.json(), { sold: 2 }, 'its own listener answers');
    const same = await r.reload(`127.0.0.1:${counter}`);
    assert.is(same.moved, undefined, 'not moved: not said');
    const off = await r.reload('');
    assert.equal(off.moved, ['stamp.listen'], 'closed: said too');
    const refused = await fetch(`http://127.0.0.1:${counter}/`).then(
      () => false,
      () => true,
    );
    assert.ok(refused, 'its listener is closed');
  } finally {
    await r.close();
  }
});

test('without its line in the list, the same daemon knows nothing of it', async () => {
  const r = await router(PAYMENT_PLUGINS);
  try {
    assert.not.ok((await r.call('stamp_count')).ok, 'no ubus method');
    const bought = await r.call('purchase', {
      mac: OTHER,
      plan: 'hour',
      payment: { method: 'stamp', code: 'STAMP-1' },
    });
    assert.not.ok(bought.ok, 'no such payment method');
  } finally {
    await r.close();
  }
});

test.run();
