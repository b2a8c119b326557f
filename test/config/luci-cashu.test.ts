// tier: fast
/**
 * LuCI's TollGate / Cashu page (luci-app view/sluice/cashu.js, docs/tollgate.md "Payout") with the real common.js
 * against stub LuCI classes and a stub ubus: the ecash held per mint from cashu_balance, "Pay out now" sending
 * cashu_payout for that mint and saying what was paid and what it cost; no button without a payout address; a page
 * that says Cashu is off when the method does not answer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vm from 'node:vm';

const RES = new URL('../../luci-app/htdocs/luci-static/resources/', import.meta.url).pathname;

interface Node { tag: string; attrs: Record<string, unknown>; children: unknown[] }

function text(n: unknown): string {
  if (n === null || n === undefined || n === '') return '';
  if (typeof n === 'string' || typeof n === 'number') return String(n);
  if (Array.isArray(n)) return n.map(text).join(' ');
  return text((n as Node).children);
}

function find(n: unknown, pred: (x: Node) => boolean): Node[] {
  if (!n || typeof n !== 'object') return [];
  if (Array.isArray(n)) return n.flatMap((x) => find(x, pred));
  const node = n as Node;
  return (pred(node) ? [node] : []).concat(find(node.children, pred));
}

function load(ubus: Record<string, (p: Record<string, unknown>) => unknown>) {
  const E = (tag: unknown, attrs?: unknown, children?: unknown): Node | unknown[] => {
    if (Array.isArray(tag)) return attrs as unknown[];
    if (Array.isArray(attrs) || typeof attrs === 'string' || (attrs && typeof attrs === 'object' && 'tag' in (attrs as object))) {
      return { tag: String(tag), attrs: {}, children: Array.isArray(attrs) ? attrs : [attrs] };
    }
    return { tag: String(tag), attrs: (attrs ?? {}) as Record<string, unknown>, children: children === undefined ? [] : Array.isArray(children) ? children : [children] };
  };
  const calls: Array<[string, Record<string, unknown>]> = [];
  const notifications: string[] = [];
  const context = vm.createContext({
    _: (s: string) => s, E,
    L: { bind: (fn: (...a: unknown[]) => unknown, ctx: unknown, ...bound: unknown[]) => fn.bind(ctx, ...bound), hasViewPermission: () => true, env: {}, resolveDefault: (p: Promise<unknown>, d: unknown) => p.catch(() => d) },
    document: { documentElement: { lang: 'en' } },
    window: { setTimeout: (fn: () => void) => setImmediate(fn) },
  });
  vm.runInContext(`String.prototype.format = function () { var a = arguments, i = 0; return this.replace(/%[sdt]/g, function () { return String(a[i++]); }); };`, context);
  const rpc = {
    declare: (o: { object: string; method: string; params?: string[] }) => async (...args: unknown[]) => {
      const params: Record<string, unknown> = {};
      (o.params ?? []).forEach((p, i) => { if (args[i] !== undefined) params[p] = args[i]; });
      calls.push([`${o.object}.${o.method}`, params]);
      const h = ubus[`${o.object}.${o.method}`];
      return h ? h(params) : { error: { code: 'ERR_UNKNOWN_METHOD', message: `no ${o.method}` } };
    },
    getStatusText: (n: number) => `status ${n}`,
  };
  const common = vm.runInContext(`(function (baseclass, fs, rpc) {\n${readFileSync(join(RES, 'sluice/common.js'), 'utf8')}\n})`, context)(
    { extend: (o: unknown) => o }, {}, rpc);
  const ui = { addNotification: (_t: unknown, body: unknown) => { notifications.push(text(body)); } };
  const dom = { content: (node: Node, children: unknown) => { node.children = Array.isArray(children) ? children : [children]; } };
  const view = vm.runInContext(`(function (view, dom, form, poll, rpc, uci, ui, common) {\n${readFileSync(join(RES, 'view/sluice/cashu.js'), 'utf8')}\n})`, context)(
    { extend: (o: unknown) => o }, dom, {}, { add() {} }, rpc, { load: async () => undefined }, ui, common);
  return { view, calls, notifications };
}

const MINT = 'https://mint.example.com';
const BALANCE = {
  total: '1000', max_balance: '50000', payout_min: '5000', payout_address: 'cafe@wallet.example',
  mints: [{ mint: MINT, accepted: true, balance: '1000', proofs: 6, pending_payouts: 0, pending_sat: '0', keyset_swaps: 0 }],
  payouts: [{ mint: MINT, quote: 'q1', state: 'paid', amount: 989, input_fee: 1, fee_reserve: 10, lightning_fee: 2, change: 8, at: 1795221716, ended: 1795221717, reason: null }],
};

test('the balance per mint, and "Pay out now" pays that mint out and says what it cost', async () => {
  const { view, calls, notifications } = load({
    'sluice.cashu_balance': () => BALANCE,
    'sluice.cashu_payout': () => ({ mint: MINT, state: 'paid', quote: 'q2', amount: 989, input_fee: 1, fee_reserve: 10, lightning_fee: 2, change: 8, reason: null }),
  });
  view.balanceBox = { tag: 'div', attrs: {}, children: [] };
  const shown = view.renderBalance(BALANCE);
  const words = text(shown);
  assert.match(words, MINT);
  assert.match(words, '1000 sat');
  assert.match(words, 'Paid out to cafe@wallet.example once a mint holds 5000 sat');
  assert.match(words, '3 sat', 'the last payout\'s fees: input 1 + lightning 2');
  const [button] = find(shown, (n) => n.tag === 'button');
  assert.is(text(button), 'Pay out now');
  await (button!.attrs.click as (ev: unknown) => Promise<void>)({ currentTarget: {} });
  assert.equal(calls.filter(([m]) => m === 'sluice.cashu_payout'), [['sluice.cashu_payout', { mint: MINT }]]);
  assert.match(notifications.join('\n'), 'Paid 989 sat to your Lightning address (mint fee 1 sat, Lightning fee 2 sat; 8 sat came back and stays here).');
  assert.ok(calls.filter(([m]) => m === 'sluice.cashu_balance').length >= 1, 'the balance read again after the payout');
});

test('no payout address: no button, and the page says the ecash stays until one is set; Cashu off says so', () => {
  const { view } = load({});
  const shown = view.renderBalance({ ...BALANCE, payout_address: '' });
  assert.is(find(shown, (n) => n.tag === 'button').length, 0);
  assert.match(text(shown), 'No payout address is set');
  assert.match(text(view.renderBalance(null)), 'Cashu is off');
});

test('a payout under way says so instead of a failure', async () => {
  const { view, notifications } = load({
    'sluice.cashu_balance': () => BALANCE,
    'sluice.cashu_payout': () => ({ mint: MINT, state: 'pending', quote: 'q3', amount: 989, input_fee: 1, fee_reserve: 10, lightning_fee: null, change: null, reason: 'the Lightning payment is under way' }),
  });
  view.balanceBox = { tag: 'div', attrs: {}, children: [] };
  await view.handlePayout(MINT, null);
  assert.match(notifications.join('\n'), 'under way');
});

test.run();
