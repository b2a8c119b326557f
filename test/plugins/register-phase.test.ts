// tier: fast
/**
 * The plugins' register phase (PaymentPlugin.register): it runs for every plugin of the list, switched on or off,
 * before any plugin opens, and what each registers (ubus methods, LAN routes, x402 schemes) is what the list serves
 * (PaymentPlugins.registrations, PaymentPlugins.lan), and so are its pay-page scripts and form, its reason to run the
 * LAN endpoint, its payers and its place in ubus `stats`. A ubus method, route, scheme, script, form, use or stats key
 * registered by two plugins is refused naming both, a second form, use, payers or stats slot of one plugin too, and
 * a registrar called after its register phase throws. The real session manager on temp files.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../../src/config/index.ts';
import type { Log } from '../../src/log.ts';
import { PaymentPlugins } from '../../src/payments/index.ts';
import { registerPlugins } from '../../src/payments/registrations.ts';
import type { PaymentPlugin, PluginRegistrars } from '../../src/payments/plugin.ts';
import type { LanRoute, UbusMethod } from '../../src/payments/plugin-faces.ts';
import type { Session } from '../../src/sessions/index.ts';
import { setup } from '../sessions/helpers.ts';

const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };
const config = { main: { stateDir: '/nonexistent' }, pricing: [], x402: { enabled: false } } as unknown as Config;

const route = (path: string): LanRoute => ({
  method: 'POST',
  path,
  handler: async () => ({ status: 200, body: {} }),
});
const ubusMethod: UbusMethod = { args: {}, adminOnly: true, handler: () => ({}) };

test('every plugin of the list registers before any opens, one switched off too, and the list serves it', async () => {
  const seen: string[] = [];
  const first: PaymentPlugin = {
    name: 'first',
    register: (add) => {
      seen.push('first registers');
      add.ubusMethod('first_count', ubusMethod);
    },
    async open() {
      seen.push('first opens');
      return { methods: [] };
    },
  };
  const off: PaymentPlugin = {
    name: 'off',
    switch: 'x402',
    register: (add) => {
      seen.push('off registers');
      add.lanRoute(route('/off'));
      add.x402Scheme({ scheme: 'off-scheme', method: 'off', planKey: 'off' });
    },
    async open() {
      seen.push('off opens');
      return { methods: [] };
    },
  };
  const env = await setup();
  const ctx = { config, sessions: env.manager, log: quiet } as unknown as Parameters<typeof PaymentPlugins.open>[1];
  const list = await PaymentPlugins.open([first, off], ctx);
  assert.equal(seen, ['first registers', 'off registers', 'first opens'], 'both registered before the first opened');
  assert.equal(
    list.registrations.map((r) => [r.plugin.name, Object.keys(r.ubusMethods), r.lanRoutes.map((x) => x.path)]),
    [
      ['first', ['first_count'], []],
      ['off', [], ['/off']],
    ],
  );
  const lan = list.lan(config);
  assert.equal(
    lan.methods.map((m) => [m.plugin.name, m.routes.map((r) => r.path), m.face]),
    [
      ['first', [], null],
      ['off', ['/off'], null],
    ],
    "the switched-off plugin's route is served (it answers from its null face)",
  );
  assert.equal(
    lan.knownSchemes.map((s) => s.scheme),
    ['off-scheme'],
    'its scheme is known while it does not run',
  );
  assert.equal(lan.schemes, [], 'and has no running face');
});

test('a ubus method, route or scheme registered by two plugins is refused, naming both', () => {
  const registering = (name: string, fn: (add: PluginRegistrars) => void): PaymentPlugin => ({
    name,
    register: fn,
    open: async () => ({ methods: [] }),
  });
  const twice = (fn: (add: PluginRegistrars) => void): string => {
    try {
      registerPlugins([registering('a', fn), registering('b', fn)]);
    } catch (err) {
      return (err as Error).message;
    }
    return 'not refused';
  };
  assert.match(
    twice((add) => add.ubusMethod('same', ubusMethod)),
    /ubus method same .*a and b/,
  );
  assert.match(
    twice((add) => add.lanRoute(route('/same'))),
    /LAN route POST \/same .*a and b/,
  );
  const scheme = { scheme: 'same', method: 'same', planKey: 'same' };
  assert.match(
    twice((add) => add.x402Scheme(scheme)),
    /x402 scheme same .*a and b/,
  );
});

test('pay-page scripts and form, LAN use, payers and stats slot: registered, served, each refused twice', async () => {
  const form = { key: 'card', offered: () => true };
  const use = { name: 'cards', on: () => true };
  const slot = { key: 'cards', absent: { running: false } };
  const carded: PaymentPlugin = {
    name: 'carded',
    switch: 'x402',
    register(add) {
      add.pageScript('card.js');
      add.payForm(form);
      add.lanUse(use);
      add.payersOf((session) => session.payments.map((p) => p.reference));
      add.stats(slot);
    },
    open: async () => ({ methods: [] }),
  };
  const env = await setup();
  const ctx = { config, sessions: env.manager, log: quiet } as unknown as Parameters<typeof PaymentPlugins.open>[1];
  const list = await PaymentPlugins.open([carded], ctx);
  const [served] = list.lan(config).methods;
  assert.equal([served!.pageScripts, served!.payForm, served!.lanUse], [['card.js'], form, use]);
  const paid = { payments: [{ reference: '0xabc' }] } as unknown as Session;
  assert.equal(served!.payersOf?.(paid, null), ['0xabc']);
  assert.equal(list.forms(config), { card: true });
  assert.equal(list.stats(), { cards: { running: false } }, 'switched off: its absent figures');

  const refused = (...plugins: Array<(add: PluginRegistrars) => void>): string => {
    try {
      registerPlugins(plugins.map((register, i) => ({ name: `p${i}`, register, open: async () => ({ methods: [] }) })));
    } catch (err) {
      return (err as Error).message;
    }
    return 'not refused';
  };
  const script = (add: PluginRegistrars): void => add.pageScript('same.js');
  assert.match(refused(script, script), /pay-page script \/same.js .*p0 and p1/);
  const sameForm = (add: PluginRegistrars): void => add.payForm(form);
  assert.match(refused(sameForm, sameForm), /pay-page form card .*p0 and p1/);
  const sameUse = (add: PluginRegistrars): void => add.lanUse(use);
  assert.match(refused(sameUse, sameUse), /LAN endpoint use cards .*p0 and p1/);
  const sameSlot = (add: PluginRegistrars): void => add.stats(slot);
  assert.match(refused(sameSlot, sameSlot), /stats key cards .*p0 and p1/);
  const twoSlots = (add: PluginRegistrars): void => {
    add.stats(slot);
    add.stats({ key: 'other', absent: {} });
  };
  assert.match(refused(twoSlots), /p0 registered a second stats/);
  const twoPayers = (add: PluginRegistrars): void => {
    add.payersOf(() => []);
    add.payersOf(() => []);
  };
  assert.match(refused(twoPayers), /p0 registered a second payersOf/);
});

test('a registrar kept past the register phase refuses a late registration', () => {
  let kept: PluginRegistrars | undefined;
  const late: PaymentPlugin = {
    name: 'late',
    register: (add) => void (kept = add),
    open: async () => ({ methods: [] }),
  };
  const [registered] = registerPlugins([late]);
  assert.throws(() => kept!.ubusMethod('late_count', ubusMethod), /after its register phase/);
  assert.throws(() => kept!.pageScript('late.js'), /after its register phase/);
  assert.throws(() => kept!.payForm({ key: 'late', offered: () => true }), /after its register phase/);
  assert.throws(() => kept!.lanUse({ name: 'late', on: () => true }), /after its register phase/);
  assert.throws(() => kept!.payersOf(() => []), /after its register phase/);
  assert.throws(() => kept!.stats({ key: 'late', absent: {} }), /after its register phase/);
  assert.equal(registered!.ubusMethods, {});
  assert.equal(
    [registered!.pageScripts, registered!.payForm, registered!.lanUse, registered!.stats],
    [[], null, null, null],
  );
});

test.run();
