// tier: fast
/**
 * LuCI's Vouchers page (luci-app view/sluice/vouchers.js, docs/vouchers.md) with the real common.js against stub LuCI
 * classes and a stub ubus: Generate sends voucher_create what the form says (the last day up to its end), shows the
 * codes once and prints a sheet of tickets (code, plan, a QR code drawn by the pay page's own qr.js to
 * /portal?voucher=CODE); the batches table shows used / unused / expired; Revoke calls voucher_revoke.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vm from 'node:vm';

const RES = new URL('../../luci-app/htdocs/luci-static/resources/', import.meta.url).pathname;
const QR_JS = new URL('../../files/usr/share/sluice/portal/qr.js', import.meta.url).pathname;

interface Node {
  tag: string;
  attrs: Record<string, unknown>;
  children: unknown[];
  value?: unknown;
}

function text(n: unknown): string {
  if (n === null || n === undefined || n === '') return '';
  if (typeof n === 'string' || typeof n === 'number') return String(n);
  if (Array.isArray(n)) return n.map(text).join('');
  return text((n as Node).children);
}

function find(n: unknown, pred: (x: Node) => boolean): Node[] {
  if (!n || typeof n !== 'object') return [];
  if (Array.isArray(n)) return n.flatMap((x) => find(x, pred));
  const node = n as Node;
  return (pred(node) ? [node] : []).concat(find(node.children, pred));
}

function load(
  ubus: Record<string, (p: Record<string, unknown>) => unknown>,
  payPage = 'http://192.168.1.1:2122/portal',
  exec: (action: string) => { code: number } = () => ({ code: 0 }),
  writable = true,
) {
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
  const printed: string[] = [];
  const context = vm.createContext({
    _: (s: string) => s,
    E,
    BigInt,
    encodeURIComponent,
    L: {
      bind: (fn: (...a: unknown[]) => unknown, ctx: unknown, ...bound: unknown[]) => fn.bind(ctx, ...bound),
      hasViewPermission: () => writable,
      env: {},
      resolveDefault: (p: Promise<unknown>, d: unknown) => p.catch(() => d),
    },
    document: { documentElement: { lang: 'en' } },
    confirm: () => true,
    window: {
      setTimeout: (fn: () => void) => setImmediate(fn),
      location: { hostname: '192.168.1.1' },
      open: () => ({
        document: { open() {}, write: (html: string) => printed.push(html), close() {} },
        focus() {},
        print() {},
      }),
    },
  });
  // %t as LuCI's String.prototype.format writes it (luci.js: "%dh %dm %ds", a day part past 24 h): what a real sheet
  // showed.
  vm.runInContext(
    `String.prototype.format = function () { var a = arguments, i = 0; return this.replace(/%[sdt]/g, function (c) {
    var v = a[i++]; if (c !== '%t') return String(v);
    var ts = Number(v) || 0, tm = Math.floor(ts / 60), th = Math.floor(tm / 60), td = Math.floor(th / 24);
    return td > 0 ? td + 'd ' + (th % 24) + 'h ' + (tm % 60) + 'm ' + (ts % 60) + 's'
      : th + 'h ' + (tm % 60) + 'm ' + (ts % 60) + 's'; }); };`,
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
        const reply = h ? h(params) : { error: { code: 'ERR_UNKNOWN_METHOD', message: `no ${o.method}` } };
        // voucher_list names the pay page the tickets carry (the daemon's http.portal_url or http://<listen>/portal).
        return o.method === 'voucher_list' ? { pay_page: payPage, ...(reply as object) } : reply;
      },
    getStatusText: (n: number) => `status ${n}`,
  };
  const execs: string[] = [];
  const fs = {
    read: async (path: string) =>
      readFileSync(path === '/usr/share/sluice/portal/qr.js' ? QR_JS : '/nonexistent', 'utf8'),
    exec: async (_cmd: string, args: string[]) => {
      execs.push(args[0]!);
      return exec(args[0]!);
    },
  };
  const common = vm.runInContext(
    `(function (baseclass, fs, rpc) {\n${readFileSync(join(RES, 'sluice/common.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, fs, rpc);
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
  const tickets = vm.runInContext(
    `(function (baseclass, common) {\n${readFileSync(join(RES, 'sluice/tickets.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, common);
  const view = vm.runInContext(
    '(function (view, dom, fs, rpc, ui, common, tickets) ' +
      `{\n${readFileSync(join(RES, 'view/sluice/vouchers.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, dom, fs, rpc, ui, common, tickets);
  return { view, calls, notifications, printed, execs };
}

// What the daemon's ubus pricing answers (docs/ubus-api.md): {default, plans}. The page read `pricing` once, a key the
// daemon never sends, and offered no plan in a real LuCI (docs/luci-check.md).
const PRICING = {
  default: 'hour',
  plans: [
    { id: 'hour', display_name: 'One hour', metric: 'seconds', step_size: '3600', min_steps: '1', max_steps: '10' },
    { id: 'trial', metric: 'seconds', step_size: '900', min_steps: '1', max_steps: '1', trial_every: '86400' },
  ],
};
const BATCH = {
  id: '7KQ2M9',
  plan: 'hour',
  steps: '2',
  metric: 'seconds',
  allotment: '7200',
  count: 20,
  used: 5,
  unused: 15,
  expired: 0,
  revoked: false,
  created: 1795597200,
  expires: null,
  note: 'terrace',
};

test(
  "Generate: voucher_create with the form's values; the codes shown once; a sheet of tickets with QR codes to " +
    'the pay page',
  async () => {
    const codes = ['7KQ2-M9AB-CD', 'EFGH-JKLM-NP'];
    const p = load({
      'sluice.voucher_list': () => ({ batches: [BATCH] }),
      'sluice.pricing': () => PRICING,
      'sluice.voucher_create': (a) => ({
        batch: 'QRST22',
        plan: a.plan,
        steps: a.steps,
        count: 2,
        metric: 'seconds',
        allotment: '7200',
        expires: a.expires,
        note: a.note,
        codes,
      }),
    });
    const data = await p.view.load();
    const page = p.view.render(data);
    assert.not.ok(text(page).includes('trial'), 'a free-trial plan is not offered for vouchers');
    assert.match(text(page), /7KQ2M9.*terrace.*20.*5.*15/);
    const inputs = p.view.inputs as Record<string, Node>;
    inputs.plan!.value = 'hour';
    inputs.count!.value = '2';
    inputs.steps!.value = '2';
    inputs.expires!.value = '2099-12-31';
    inputs.note!.value = 'terrace';
    await (find(page, (n) => n.tag === 'button' && text(n) === 'Generate')[0]!.attrs.click as () => Promise<void>)();
    const create = p.calls.find(([m]) => m === 'sluice.voucher_create')![1];
    assert.equal(
      { ...create, expires: undefined },
      { plan: 'hour', count: 2, steps: 2, note: 'terrace', expires: undefined },
    );
    assert.is(create.expires, Math.floor(new Date('2099-12-31T23:59:59').getTime() / 1000), 'the whole last day');
    const made = p.view.madeBox as Node;
    assert.match(text(made), /shown only now/);
    for (const c of codes) assert.ok(text(made).includes(c));
    const print = find(made, (n) => n.tag === 'button' && text(n) === 'Print tickets')[0]!;
    (print.attrs.click as () => void)();
    assert.is(p.printed.length, 1);
    const sheet = p.printed[0]!;
    for (const c of codes) assert.ok(sheet.includes(`>${c}<`), `ticket ${c}`);
    assert.is((sheet.match(/<img alt="" src="data:image\/svg\+xml,/g) ?? []).length, 2, 'a QR code per ticket');
    assert.ok(sheet.includes('http://192.168.1.1:2122/portal'), 'the pay page address printed');
    assert.ok(sheet.includes('One hour'));
    assert.is(p.notifications.length, 0, p.notifications.join('; '));
  },
);

test(
  'tickets, batches and plans say time and data as people do: "30 min", "1 h 30 min", "1 day", "500 MB", "1 GB" ' +
    '(a real sheet printed "0h 30m 0s")',
  async () => {
    const plans = [
      { id: 'half', display_name: 'Half hour', metric: 'seconds', step_size: '1800', min_steps: '1', max_steps: '10' },
      { id: 'data', display_name: 'Data', metric: 'bytes', step_size: '500000000', min_steps: '1', max_steps: '10' },
    ];
    const batch = (id: string, metric: string, allotment: string) => ({ ...BATCH, id, plan: id, metric, allotment });
    const p = load({
      'sluice.voucher_list': () => ({
        batches: [
          batch('B1', 'seconds', '5400'),
          batch('B2', 'seconds', '86400'),
          batch('B3', 'seconds', '7200'),
          batch('B4', 'bytes', '1000000000'),
        ],
      }),
      'sluice.pricing': () => ({ default: 'half', plans }),
      'sluice.voucher_create': (a) => ({
        batch: 'QRST22',
        plan: a.plan,
        steps: a.steps,
        count: 1,
        metric: 'seconds',
        allotment: '1800',
        expires: null,
        note: null,
        codes: ['7KQ2-M9AB-CD'],
      }),
    });
    const page = p.view.render(await p.view.load());
    const words = text(page);
    assert.match(words, 'Half hour (1 step = 30 min)');
    assert.match(words, 'Data (1 step = 500 MB)');
    for (const shown of ['B1 · 1 h 30 min', 'B2 · 1 day', 'B3 · 2 h', 'B4 · 1 GB']) assert.match(words, shown);
    assert.not.match(words, /\dh \d+m \d+s/, 'no stopwatch figures');
    const inputs = p.view.inputs as Record<string, Node>;
    inputs.plan!.value = 'half';
    inputs.count!.value = '1';
    inputs.steps!.value = '1';
    inputs.expires!.value = '';
    inputs.note!.value = '';
    await (find(page, (n) => n.tag === 'button' && text(n) === 'Generate')[0]!.attrs.click as () => Promise<void>)();
    (find(p.view.madeBox, (n) => n.tag === 'button' && text(n) === 'Print tickets')[0]!.attrs.click as () => void)();
    assert.ok(p.printed[0]!.includes('Half hour · 30 min'), 'the ticket: plan · what it buys');
    assert.not.ok(p.printed[0]!.includes('0h 30m 0s'));
  },
);

test('a price set when printing: sent in cents with its currency; the sheet and the table show it', async () => {
  const p = load({
    'sluice.voucher_list': () => ({ batches: [{ ...BATCH, price: { amount: '250', currency: 'EUR', decimals: 2 } }] }),
    'sluice.pricing': () => PRICING,
    'sluice.voucher_create': (a) => ({
      batch: 'QRST22',
      plan: a.plan,
      steps: a.steps,
      count: 1,
      metric: 'seconds',
      allotment: '3600',
      expires: null,
      note: null,
      price: { amount: a.price, currency: a.currency, decimals: 2 },
      codes: ['7KQ2-M9AB-CD'],
    }),
  });
  const page = p.view.render(await p.view.load());
  assert.match(text(page), /7KQ2M9.*terrace.*2\.5 EUR/);
  const inputs = p.view.inputs as Record<string, Node>;
  inputs.plan!.value = 'hour';
  inputs.count!.value = '1';
  inputs.steps!.value = '1';
  inputs.expires!.value = '';
  inputs.note!.value = '';
  inputs.currency!.value = 'eur';
  const generate = find(page, (n) => n.tag === 'button' && text(n) === 'Generate')[0]!.attrs
    .click as () => Promise<void>;
  inputs.price!.value = '2.5.0';
  await generate();
  assert.match(p.notifications.pop() ?? '', /Price/);
  inputs.price!.value = '2,50';
  await generate();
  const create = p.calls.find(([m]) => m === 'sluice.voucher_create')![1];
  assert.equal([create.price, create.currency], ['250', 'EUR']);
  (find(p.view.madeBox, (n) => n.tag === 'button' && text(n) === 'Print tickets')[0]!.attrs.click as () => void)();
  assert.ok(p.printed[0]!.includes('One hour · 1 h · 2.5 EUR'), 'the ticket says its price');
  inputs.price!.value = '3';
  await generate();
  const whole = p.calls.filter(([m]) => m === 'sluice.voucher_create').at(-1)![1];
  assert.equal([whole.price, whole.currency], ['300', 'EUR'], 'a whole amount is a price too');
  inputs.price!.value = '0.00';
  await generate();
  const free = p.calls.filter(([m]) => m === 'sluice.voucher_create').at(-1)![1];
  assert.equal(
    [free.price, free.currency],
    [undefined, undefined],
    'a price of 0 is no price (the daemon refuses a currency without one)',
  );
});

test('the first batch offers no restart: the daemon opens the voucher box itself', async () => {
  const batches: unknown[] = [];
  const p = load(
    {
      'sluice.voucher_list': () => ({ batches }),
      'sluice.pricing': () => PRICING,
      'rc.list': () => ({ sluice: { running: true, enabled: true } }),
      'sluice.stats': () => ({ uptime_s: 1 }),
      'sluice.voucher_create': () => {
        batches.push(BATCH);
        return {
          batch: '7KQ2M9',
          count: 1,
          metric: 'seconds',
          allotment: '3600',
          expires: null,
          codes: ['7KQ2-M9AB-CD'],
        };
      },
    },
    undefined,
    (action) => ({ code: action === 'restart' ? 0 : 1 }),
  );
  const page = p.view.render(await p.view.load());
  const inputs = p.view.inputs as Record<string, Node>;
  inputs.plan!.value = 'hour';
  inputs.count!.value = '1';
  inputs.steps!.value = '1';
  const generate = find(page, (n) => n.tag === 'button' && text(n) === 'Generate')[0]!;
  await (generate.attrs.click as () => Promise<void>)();
  assert.ok(find(p.view.madeBox, (n) => n.tag === 'button' && text(n) === 'Print tickets').length === 1);
  assert.not.match(JSON.stringify(p.view.madeBox), /[Rr]estart/);
  assert.equal(p.execs, []);
});

test(
  'Revoke calls voucher_revoke for the batch and says how ' + 'many tickets stopped; bad input is refused on the page',
  async () => {
    const p = load({
      'sluice.voucher_list': () => ({ batches: [BATCH] }),
      'sluice.pricing': () => PRICING,
      'sluice.voucher_revoke': (a) => ({ batch: a.batch, revoked: 15 }),
    });
    const page = p.view.render(await p.view.load());
    const revoke = find(page, (n) => n.tag === 'button' && text(n) === 'Revoke')[0]!;
    await (revoke.attrs.click as () => Promise<void>)();
    assert.equal(
      p.calls.filter(([m]) => m === 'sluice.voucher_revoke').map(([, a]) => a),
      [{ batch: '7KQ2M9' }],
    );
    assert.match(p.notifications.join('\n'), /Batch 7KQ2M9 revoked: 15 unused tickets/);
    const inputs = p.view.inputs as Record<string, Node>;
    inputs.plan!.value = 'hour';
    inputs.count!.value = '1';
    inputs.steps!.value = '11';
    await p.view.handleCreate(PRICING.plans.slice(0, 1), null);
    assert.match(p.notifications.at(-1)!, /1 to 10 steps/);
    assert.not.ok(p.calls.some(([m]) => m === 'sluice.voucher_create'));
  },
);

test(
  'a read-only LuCI user: no voucher_list call (rpcd refuses it: the three methods are in the write ACL), no ' +
    'form, a plain notice instead of the refusal',
  async () => {
    // In the real LuCI (docs/luci-check.md) a read-only account got the form with a live Generate button and, as the
    // list, rpcd's "RPC call to sluice/voucher_list failed with error -32002: Access denied at …rpc.js:82:7".
    const denied = () => {
      throw new Error('RPC call to sluice/voucher_list failed with error -32002: Access denied');
    };
    const p = load(
      { 'sluice.voucher_list': denied, 'sluice.voucher_create': denied, 'sluice.pricing': () => PRICING },
      undefined,
      undefined,
      false,
    );
    const page = p.view.render(await p.view.load());
    assert.not.ok(
      p.calls.some(([m]) => m.startsWith('sluice.voucher_')),
      p.calls.map(([m]) => m).join(),
    );
    assert.is(find(page, (n) => n.tag === 'button').length, 0, 'no Generate, no Revoke');
    assert.not.match(text(page), /Access denied|-32002/);
    assert.match(text(page), /administrator/);
  },
);

test.run();
