// tier: fast
/**
 * The figures the Sessions page and Status → Overview show, with the real common.js and the
 * views against stub LuCI classes and a stub ubus (each rpc.declare answers from a table): gate-pending devices are
 * not active, Stop/Start end in a state the page has seen, revenue carries its currency, sizes are in their largest
 * whole unit, numbers follow the UI language, and the page's own refusals are not passed off as the daemon's.
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
  if (Array.isArray(n)) return n.map(text).join('');
  return text((n as Node).children);
}

/** Buttons in a stub node tree. */
function buttons(n: unknown): Node[] {
  if (!n || typeof n !== 'object') return [];
  if (Array.isArray(n)) return n.flatMap(buttons);
  const node = n as Node;
  return (node.tag === 'button' ? [node] : []).concat(buttons(node.children));
}

type Handler = (params: Record<string, unknown>) => unknown;

/**
 * common.js, sessions.js and the Overview widget over `ubus` (object.method → handler) and `exec` (the init script).
 */
function load(
  ubus: Record<string, Handler>,
  opts: { lang?: string; exec?: (action: string) => { code: number } } = {},
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
  const notifications: string[] = [];
  const execs: string[] = [];
  const context = vm.createContext({
    _: (s: string) => s,
    E,
    BigInt,
    // As LuCI 24.10 runs: L.env has no lang; the UI language is <html lang> (the header template's dispatcher.lang).
    L: {
      bind: (fn: (...a: unknown[]) => unknown, ctx: unknown) => fn.bind(ctx),
      hasViewPermission: () => true,
      env: {},
    },
    document: { documentElement: { lang: opts.lang ?? 'en' } },
    cbi_update_table: (table: Node & { rows?: unknown[] }, rows: unknown[]) => {
      table.rows = rows;
    },
    // Waits of the page (between service polls) pass at once: the stub service changes state per poll, not per second.
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
        const h = ubus[`${o.object}.${o.method}`];
        return h ? h(params) : { error: { code: 'ERR_UNKNOWN_METHOD', message: `no ${o.method}` } };
      },
    getStatusText: (n: number) => `status ${n}`,
  };
  const fs = {
    exec: async (_cmd: string, args: string[]) => {
      execs.push(args[0]!);
      return opts.exec ? opts.exec(args[0]!) : { code: 0 };
    },
  };
  const common = vm.runInContext(
    `(function (baseclass, fs, rpc) {\n${readFileSync(join(RES, 'sluice/common.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, fs, rpc);
  const ui = {
    addNotification: (_t: unknown, body: unknown) => {
      notifications.push(text(body));
      return undefined;
    },
    createHandlerFn:
      (ctx: any, fn: any, ...bound: unknown[]) =>
      (...a: unknown[]) =>
        (typeof fn === 'string' ? ctx[fn] : fn).apply(ctx, bound.concat(a)),
    showModal() {},
    hideModal() {},
  };
  const dom = {
    content: (node: Node, children: unknown) => {
      node.children = Array.isArray(children) ? children : [children];
    },
    parent: (_n: unknown) => null,
  };
  const sessions = vm.runInContext(
    `(function (view, dom, poll, ui, common) {\n${readFileSync(join(RES, 'view/sluice/sessions.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, dom, { add() {} }, ui, common);
  const overview = vm.runInContext(
    `(function (baseclass, common) {\n${readFileSync(join(RES, 'view/status/include/90_sluice.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, common);
  return { common, sessions, overview, notifications, execs, dom, ui, context };
}

const now = () => Math.floor(Date.now() / 1000);
const session = (mac: string, state: string, gate: string | undefined, extra: Record<string, unknown> = {}) => ({
  id: mac,
  mac,
  state,
  gate,
  metric: 'seconds',
  allotment: '3600',
  used: '0',
  remaining: '3600',
  created_at: now(),
  started_at: now(),
  expires_at: now() + 3600,
  payments: [],
  ...extra,
});
const PLANS = {
  plans: [{ id: 'hour', metric: 'seconds', currency: 'USDC', decimals: 6, asset: `0x${'a'.repeat(40)}` }],
};

function daemon(list: unknown[], statsSessions: Record<string, number>) {
  return {
    'sluice.stats': () => ({ uptime_s: 5, sessions: statsSessions, meter: { flavour: 'opennds', clients: 3 } }),
    'sluice.sessions': (p: Record<string, unknown>) => {
      const live = (s: any) => s.state === 'ACTIVE' || s.state === 'PENDING';
      const all = (list as any[]).filter((s) => (p.state === 'LIVE' ? live(s) : p.state === 'ENDED' ? !live(s) : true));
      const offset = Number(p.offset ?? 0),
        limit = Number(p.limit ?? 100);
      return {
        sessions: all.slice(offset, offset + limit),
        total: all.length,
        offset,
        limit,
        more: offset + limit < all.length,
      };
    },
    'sluice.pricing': () => PLANS,
    'rc.list': () => ({ sluice: { running: true, enabled: true } }),
  };
}

test('gate-pending devices are not counted as active: Sessions page and Overview', async () => {
  // The daemon's counters count a gate-pending session as active (its state is ACTIVE): 3 active.
  const list = [
    session('02:00:00:00:00:01', 'ACTIVE', 'open'),
    session('02:00:00:00:00:02', 'ACTIVE', 'pending'),
    session('02:00:00:00:00:03', 'ACTIVE', 'pending'),
  ];
  const { sessions, overview } = load(daemon(list, { active: 3, pending: 0, retainedEnded: 4 }));
  sessions.render(await sessions.load());
  const status = text(sessions.status);
  assert.match(status, 'Sessions1 active, 2 gate pending, 0 pending, 4 ended (kept)');
  assert.equal(
    sessions.table.rows.map((r: unknown[]) => text(r[6])),
    ['Active', 'Gate pending', 'Gate pending'],
  );
  assert.match(text(overview.render(await overview.load())), 'Active sessions1 (2 gate pending)');
});

test(
  'free trials (stats.trials): granted, refused and remembered on the Sessions page and the Overview; a damaged ' +
    'ledger said so',
  async () => {
    const ubus = daemon([], { active: 0, pending: 0 });
    const stats = ubus['sluice.stats'];
    let trials: unknown = { granted: 3, refused: 2, remembered: 5 };
    ubus['sluice.stats'] = () => ({ ...stats(), trials });
    const { sessions, overview } = load(ubus);
    sessions.render(await sessions.load());
    assert.match(text(sessions.status), 'Free trials3 granted, 2 refused since start; 5 devices remembered');
    assert.match(
      text(overview.render(await overview.load())),
      'Free trials3 granted, 2 refused since start; 5 devices remembered',
    );
    trials = { available: false };
    assert.match(
      text(overview.render(await overview.load())),
      'Free trialsunknown: the trial ledger could not be read',
    );
  },
);

test('Stop and Start end in a state the page has seen, and say which', async () => {
  // procd changes the state a few polls after the init script returns.
  let running = true;
  let target: boolean | null = null;
  let pollsLeft = 0;
  const ubus: Record<string, Handler> = {
    ...daemon([], { active: 0, pending: 0, retainedEnded: 0 }),
    'rc.list': () => {
      if (target !== null && --pollsLeft <= 0) {
        running = target;
        target = null;
      }
      return { sluice: { running, enabled: true } };
    },
  };
  const v = load(ubus, {
    exec: (action) => {
      target = action !== 'stop';
      pollsLeft = 3;
      return { code: 0 };
    },
  });
  v.sessions.render(await v.sessions.load());
  await v.sessions.handleService('stop');
  assert.equal(v.execs, ['stop']);
  assert.equal(v.notifications, ['Stopping sluice…', 'sluice stopped.']);
  assert.is(running, false);
  v.notifications.length = 0;
  await v.sessions.handleService('start');
  assert.equal(v.notifications, ['Starting sluice…', 'sluice is running.']);

  // A start that never takes says so after its polls, instead of leaving "Starting sluice…".
  v.notifications.length = 0;
  ubus['rc.list'] = () => ({ sluice: { running: false, enabled: true } });
  await v.sessions.handleService('start');
  assert.equal(v.notifications, [
    'Starting sluice…',
    'sluice is not running 20 s after Start (see logread -e sluice).',
  ]);
});

test(
  'figures: revenue with its currency, sizes in the largest whole unit, German numbers, no "sluice:" on the ' +
    "page's own refusals",
  async () => {
    const { common, overview } = load(daemon([], { active: 0, pending: 0, retainedEnded: 0 }));
    assert.match(text(overview.render(await overview.load())), 'Revenue today0 USDC');
    // The counter's cash: a printed ticket of a batch priced 2.50 EUR (voucher_list says the currency's decimals).
    const ticket = session('02:00:00:00:00:09', 'ACTIVE', 'open', {
      plan: 'hour',
      paid_total: '250',
      payments: [{ method: 'voucher', amount: '250', asset: 'EUR', reference: '7KQ2M9/' + 'a'.repeat(32) }],
    });
    const till = load({
      ...daemon([ticket], { active: 1, pending: 0, retainedEnded: 0 }),
      'sluice.voucher_list': () => ({
        batches: [{ id: '7KQ2M9', price: { amount: '250', currency: 'EUR', decimals: 2 } }],
      }),
    });
    const shown = text(till.overview.render(await till.overview.load()));
    assert.match(shown, 'Revenue today2.5 EUR', shown);
    assert.equal(
      ['1073741824', '104857600', '100000000', '1536', '1610612736', '1000', '512', '1099511627776'].map((b) =>
        common.amount('bytes', b),
      ),
      ['1 GiB', '100 MiB', '100 MB', '1.5 KiB', '1.5 GiB', '1 kB', '512 B', '1 TiB'],
    );
    assert.is(common.amount('bytes', '1181116006'), '1.1 GiB');
    // Usage is counted in KiB (openNDS): exact in KiB, yet read in the largest unit (real LuCI showed "1,042,327 KiB").
    assert.equal(
      ['1067342848', '6398976', '1048576000', '1024000'].map((b) => common.amount('bytes', b)),
      ['1,017.9 MiB', '6.1 MiB', '1,000 MiB', '1,000 KiB'],
    );
    assert.is(common.price('250000', 6, 'USDC'), '0.25 USDC');
    assert.is(common.price('1234500000', 6, 'USDC'), '1,234.5 USDC');

    const de = load(daemon([], { active: 0, pending: 0, retainedEnded: 0 }), { lang: 'de' });
    assert.is(de.common.price('250000', 6, 'USDC'), '0,25 USDC');
    assert.is(de.common.price('1234500000', 6, 'USDC'), '1.234,5 USDC');
    assert.is(de.common.amount('bytes', '1610612736'), '1,5 GiB');
    // Dates in the UI language too, not the browser's (a German browser on an English LuCI read German dates).
    const at = Date.UTC(2026, 10, 23, 19, 2, 25) / 1000;
    assert.is(de.common.timestamp(at), new Date(at * 1000).toLocaleString('de'));
    assert.is(common.timestamp(at), new Date(at * 1000).toLocaleString('en'));

    // The page's own check speaks for itself; the daemon's refusal is marked as the daemon's.
    const v = load({
      ...daemon([], { active: 0, pending: 0, retainedEnded: 0 }),
      'sluice.grant': () => ({ error: { code: 'ERR_MAC_INVALID', message: 'ERR_MAC_INVALID: no' } }),
    });
    v.sessions.render(await v.sessions.load());
    const form = (mac: string) => ({
      querySelector: (q: string) => ({ value: q.includes('grant_mac') ? mac : q.includes('grant_amount') ? '1' : 'h' }),
    });
    (v.dom as any).parent = () => form('not-a-mac');
    await v.sessions.handleGrant({ currentTarget: {} });
    assert.equal(v.notifications, ['Expecting a MAC address like aa:bb:cc:dd:ee:ff']);
    (v.dom as any).parent = () => form('02:00:00:00:00:09');
    await v.sessions.handleGrant({ currentTarget: {} });
    assert.is(v.notifications[1], 'sluice: ERR_MAC_INVALID: no');
  },
);

test(
  'several devices per purchase: joined devices listed with Remove (ubus remove_device); Move to MAC (ubus move ' +
    "{id, to}); refusals in the daemon's words",
  async () => {
    const BUYER = '02:00:00:00:00:01',
      JOINED = '02:00:00:00:00:02';
    const list = [
      session(BUYER, 'ACTIVE', 'open', { id: 's-1', ip: '10.0.0.5', max_devices: 3, devices: [BUYER, JOINED] }),
      session('02:00:00:00:00:03', 'ACTIVE', 'open', { ip: '10.0.0.6' }),
    ];
    const calls: [string, Record<string, unknown>][] = [];
    let refuse = false;
    const ubus: Record<string, Handler> = {
      ...daemon(list, { active: 2, pending: 0 }),
      'sluice.remove_device': (p) => {
        calls.push(['remove_device', p]);
        return refuse
          ? {
              error: {
                code: 'ERR_DEVICE_NOT_MEMBER',
                message: `ERR_DEVICE_NOT_MEMBER: ${String(p.mac)} is not a device of a live session`,
              },
            }
          : { session: {}, gate: 'closed' };
      },
      'sluice.move': (p) => {
        calls.push(['move', p]);
        return refuse
          ? { error: { code: 'ERR_MAC_IN_USE', message: 'ERR_MAC_IN_USE: 02:00:00:00:00:03 has a live session' } }
          : { session: {}, from: BUYER, gate: 'opened' };
      },
    };
    const v = load(ubus);
    let modal: unknown = null;
    (v as any).ui.showModal = (_t: unknown, body: unknown) => {
      modal = body;
    };
    v.sessions.render(await v.sessions.load());
    const [multi, single] = v.sessions.table.rows;
    // The IP cell carries the devices: how many of how many, each joined one (not the buyer's) with its Remove button.
    assert.is(text(multi[1]), `10.0.0.52 of 3 devices${JOINED} Remove`);
    assert.is(text(single[1]), '10.0.0.6', 'a one-device session shows its IP only');
    const remove = buttons(multi[1]);
    assert.equal(
      remove.map((b) => text(b)),
      ['Remove'],
    );
    await (remove[0]!.attrs.click as () => unknown)();
    const confirm = buttons(modal).find((b) => text(b) === 'Remove')!;
    await (confirm.attrs.click as () => Promise<void>)();
    assert.equal(calls.at(-1), ['remove_device', { mac: JOINED }]);
    assert.is(v.notifications.at(-1), `Removed ${JOINED} from the session of ${BUYER}`);

    // Move: a bad MAC is refused by the page (no call); a good one goes to the daemon with the session's id.
    const move = buttons(multi.at(-1)).find((b) => text(b) === 'Move')!;
    let typed = 'nope';
    await (move.attrs.click as () => unknown)();
    const modalBody = (modal as unknown[])[0] as any;
    modalBody.querySelector = () => ({ value: typed });
    const go = () => (buttons(modal).find((b) => text(b) === 'Move')!.attrs.click as () => Promise<void>)();
    const before = calls.length;
    await go();
    assert.is(calls.length, before, 'a bad MAC is not sent');
    assert.is(v.notifications.at(-1), 'Expecting a MAC address like aa:bb:cc:dd:ee:ff');
    typed = '02-00-00-00-00-0A';
    await go();
    assert.equal(calls.at(-1), ['move', { id: 's-1', to: '02:00:00:00:00:0a' }]);
    assert.is(v.notifications.at(-1), `Moved the session of ${BUYER} to 02:00:00:00:00:0a`);
    // The daemon's refusal, in its words.
    refuse = true;
    await go();
    assert.is(v.notifications.at(-1), 'sluice: ERR_MAC_IN_USE: 02:00:00:00:00:03 has a live session');
    await (confirm.attrs.click as () => Promise<void>)();
    assert.is(v.notifications.at(-1), `sluice: ERR_DEVICE_NOT_MEMBER: ${JOINED} is not a device of a live session`);

    // Read-only: neither Remove nor Move.
    const ro = load(ubus);
    (ro.context as any).L.hasViewPermission = () => false;
    ro.sessions.render(await ro.sessions.load());
    assert.equal(
      ro.sessions.table.rows.flatMap((r: unknown[]) => buttons(r)),
      [],
    );
  },
);

test('the Sessions table has at most 10 columns, every row ' + 'as many cells as the header (1400 px)', async () => {
  const list = [
    session('02:00:00:00:00:01', 'ACTIVE', 'open'),
    session('02:00:00:00:00:02', 'TERMINATED', undefined, { end_cause: 'admin', ended_at: now() }),
  ];
  const { sessions } = load(daemon(list, { active: 1, pending: 0, retainedEnded: 1 }));
  sessions.filter = 'all';
  sessions.render(await sessions.load());
  const header = (sessions.table as Node).children[0] as Node;
  assert.ok(header.children.length <= 10, String(header.children.length));
  for (const r of sessions.table.rows) assert.is(r.length, header.children.length);
  assert.is(text(sessions.table.rows[1][6]), 'EndedDisconnected by admin', 'the end cause under the state');
});

test.run();
