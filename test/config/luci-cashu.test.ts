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

interface Node {
  tag: string;
  attrs: Record<string, unknown>;
  children: unknown[];
}

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
    if (
      Array.isArray(attrs) ||
      typeof attrs === 'string' ||
      (attrs && typeof attrs === 'object' && 'tag' in (attrs as object))
    ) {
      return { tag: String(tag), attrs: {}, children: Array.isArray(attrs) ? attrs : [attrs] };
    }
    return {
      tag: String(tag),
      attrs: (attrs ?? {}) as Record<string, unknown>,
      children: children === undefined ? [] : Array.isArray(children) ? children : [children],
    };
  };
  const calls: Array<[string, Record<string, unknown>]> = [];
  const notifications: string[] = [];
  const context = vm.createContext({
    _: (s: string) => s,
    E,
    L: {
      bind: (fn: (...a: unknown[]) => unknown, ctx: unknown, ...bound: unknown[]) => fn.bind(ctx, ...bound),
      hasViewPermission: () => true,
      env: {},
      resolveDefault: (p: Promise<unknown>, d: unknown) => p.catch(() => d),
    },
    document: { documentElement: { lang: 'en' } },
    window: { setTimeout: (fn: () => void) => setImmediate(fn) },
  });
  vm.runInContext(
    'String.prototype.format = function () { var a = arguments, i = 0; return this.replace(/%[sdt]/g, function ' +
      '() { return String(a[i++]); }); };',
    context,
  );
  const rpc = {
    declare:
      (o: { object: string; method: string; params?: string[] }) =>
      async (...args: unknown[]) => {
        const params: Record<string, unknown> = {};
        (o.params ?? []).forEach((p, i) => {
          if (args[i] !== undefined) params[p] = args[i];
        });
        calls.push([`${o.object}.${o.method}`, params]);
        const h = ubus[`${o.object}.${o.method}`];
        return h ? h(params) : { error: { code: 'ERR_UNKNOWN_METHOD', message: `no ${o.method}` } };
      },
    getStatusText: (n: number) => `status ${n}`,
  };
  const common = vm.runInContext(
    `(function (baseclass, fs, rpc) {\n${readFileSync(join(RES, 'sluice/common.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, {}, rpc);
  const ui = {
    addNotification: (_t: unknown, body: unknown) => {
      notifications.push(text(body));
    },
  };
  const dom = {
    content: (node: Node, children: unknown) => {
      node.children = Array.isArray(children) ? children : [children];
    },
  };
  // LuCI's form.Map as far as the page uses it: its rendered node carries its own title and description, as
  // LuCI's does (an h2 and a cbi-map-descr only when set).
  const option = () => ({ value() {} });
  const form = {
    NamedSection: 'NamedSection',
    Flag: 'Flag',
    Value: 'Value',
    ListValue: 'ListValue',
    DynamicList: 'DynamicList',
    Map: function (
      this: { title?: string | undefined; description?: string | undefined },
      _config: string,
      title?: string,
      description?: string,
    ) {
      this.title = title;
      this.description = description;
    },
  };
  Object.assign((form.Map as unknown as { prototype: object }).prototype, {
    section() {
      return { option };
    },
    async render(this: { title?: string | undefined; description?: string | undefined }) {
      return E('div', { class: 'cbi-map' }, [
        this.title ? E('h2', this.title) : '',
        this.description ? E('div', { class: 'cbi-map-descr' }, this.description) : '',
        E('fieldset', 'settings'),
      ]);
    },
  });
  const view = vm.runInContext(
    '(function (view, dom, form, poll, rpc, uci, ui, common) ' +
      `{\n${readFileSync(join(RES, 'view/sluice/cashu.js'), 'utf8')}\n})`,
    context,
  )(
    { extend: (o: unknown) => o },
    dom,
    form,
    { add() {} },
    rpc,
    { load: async () => undefined, sections: () => [] },
    ui,
    common,
  );
  return { view, calls, notifications };
}

const MINT = 'https://mint.example.com';
const BALANCE = {
  total: '1000',
  max_balance: '50000',
  payout_min: '5000',
  payout_address: 'cafe@wallet.example',
  mints: [
    { mint: MINT, accepted: true, balance: '1000', proofs: 6, pending_payouts: 0, pending_sat: '0', keyset_swaps: 0 },
  ],
  payouts: [
    {
      mint: MINT,
      quote: 'q1',
      state: 'paid',
      amount: 989,
      input_fee: 1,
      fee_reserve: 10,
      lightning_fee: 2,
      change: 8,
      at: 1795221716,
      ended: 1795221717,
      reason: null,
    },
  ],
};

test('the balance per mint, and "Pay out now" pays that mint out and says what it cost', async () => {
  const { view, calls, notifications } = load({
    'sluice.cashu_balance': () => BALANCE,
    'sluice.cashu_payout': () => ({
      mint: MINT,
      state: 'paid',
      quote: 'q2',
      amount: 989,
      input_fee: 1,
      fee_reserve: 10,
      lightning_fee: 2,
      change: 8,
      reason: null,
    }),
  });
  view.balanceBox = { tag: 'div', attrs: {}, children: [] };
  const shown = view.renderBalance(BALANCE);
  const words = text(shown);
  assert.match(words, MINT);
  assert.match(words, '1000 sat');
  assert.match(words, 'Paid out to cafe@wallet.example once a mint holds 5000 sat');
  assert.match(words, '3 sat', "the last payout's fees: input 1 + lightning 2");
  const [button] = find(shown, (n) => n.tag === 'button');
  assert.is(text(button), 'Pay out now');
  await (button!.attrs.click as (ev: unknown) => Promise<void>)({ currentTarget: {} });
  assert.equal(
    calls.filter(([m]) => m === 'sluice.cashu_payout'),
    [['sluice.cashu_payout', { mint: MINT }]],
  );
  assert.match(
    notifications.join('\n'),
    'Paid 989 sat to your Lightning address (mint fee 1 sat, Lightning fee 2 sat; 8 sat came back and stays here).',
  );
  assert.ok(calls.filter(([m]) => m === 'sluice.cashu_balance').length >= 1, 'the balance read again after the payout');
});

test('no payout address: no button, and the page says the ecash stays until one is set; Cashu off says so', () => {
  const { view } = load({});
  const shown = view.renderBalance({ ...BALANCE, payout_address: '' });
  assert.is(find(shown, (n) => n.tag === 'button').length, 0);
  assert.match(text(shown), 'No payout address is set');
  assert.match(text(view.renderBalance(null)), 'Cashu is off');
});

test(
  'the page\'s title comes first, then the ecash held, then the settings (a real LuCI showed "Ecash held" above ' +
    'the title)',
  async () => {
    const { view } = load({ 'sluice.cashu_balance': () => BALANCE });
    const page = await view.render([BALANCE]);
    const headings = find(page, (n) => n.tag === 'h2' || n.tag === 'h3')
      .map(text)
      .filter((t) => t !== '');
    assert.equal([...headings], ['TollGate / Cashu', 'Ecash held'], 'one title, above the balance');
    const words = text(page);
    assert.ok(
      words.indexOf('Customers can pay with Cashu') < words.indexOf('Held now'),
      'what Cashu is, before the balance',
    );
    assert.ok(words.indexOf('Held now') < words.indexOf('settings'), 'the balance before the settings');
  },
);

test('a mint that did not answer when last asked says so on the page, with when; one that answered does not', () => {
  const { view } = load({});
  const at = 1795221716;
  const down = view.renderBalance({
    ...BALANCE,
    mints: [
      {
        ...BALANCE.mints[0],
        reachable: false,
        checked_at: at,
        last_error: "the mint's keysets cannot be read (fetch failed)",
      },
    ],
  });
  const when = new Date(at * 1000).toLocaleString('en');
  assert.match(text(down), `The mint did not answer at ${when}`);
  const [warning] = find(down, (n) => String(n.attrs.class ?? '').includes('warning'));
  assert.match(String(warning!.attrs.title), 'fetch failed', 'the reason, for whoever looks closer');
  for (const reachable of [true, null]) {
    const shown = text(
      view.renderBalance({
        ...BALANCE,
        mints: [{ ...BALANCE.mints[0], reachable, checked_at: reachable ? at : null, last_error: null }],
      }),
    );
    assert.not.match(shown, 'did not answer', String(reachable));
  }
});

test('a payout under way says so instead of a failure', async () => {
  const { view, notifications } = load({
    'sluice.cashu_balance': () => BALANCE,
    'sluice.cashu_payout': () => ({
      mint: MINT,
      state: 'pending',
      quote: 'q3',
      amount: 989,
      input_fee: 1,
      fee_reserve: 10,
      lightning_fee: null,
      change: null,
      reason: 'the Lightning payment is under way',
    }),
  });
  view.balanceBox = { tag: 'div', attrs: {}, children: [] };
  await view.handlePayout(MINT, null);
  assert.match(notifications.join('\n'), 'under way');
});

test('a payout on its way is said beside the cap: it counts toward max_balance until the mint confirms it', () => {
  const { view } = load({});
  const quiet = text(view.renderBalance(BALANCE));
  assert.not.match(quiet, 'on its way counts');
  const leaving = { ...BALANCE.mints[0], balance: '0', proofs: 0, pending_payouts: 1, pending_sat: '400' };
  const shown = text(view.renderBalance({ ...BALANCE, total: '600', mints: [leaving, { ...leaving, mint: 'b' }] }));
  assert.match(shown, 'Held now: 600 sat of at most 50000 sat.');
  assert.match(shown, 'A payout of 800 sat on its way counts toward that until the mint confirms it.');
});

test.run();
