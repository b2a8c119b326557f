// tier: daemon
/**
 * The Sessions page (sessions.js with the real common.js) against the real daemon: LuCI's classes are stood in (E,
 * dom, ui, view, rpc.declare → a ubus call on the daemon's broker with the declared parameters, undefined ones left
 * out, as LuCI's rpc.js sends them). With hundreds of sessions the page asks the daemon for one page at a time with
 * the filter as `state`, pages with Previous/Next, and a grant to a device not on the portal shows "Gate pending".
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vm from 'node:vm';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import { DaemonLab } from '../daemon/harness.ts';
import type { BlobmsgTable } from '../../src/ubus/codec/index.ts';

const RES = new URL('../../luci-app/htdocs/luci-static/resources/', import.meta.url).pathname;
const COUNT = 250;
const ENDED = 30;
const NOT_ON_PORTAL = '02:00:00:0f:ff:01';
const macOf = (i: number): string =>
  `02:00:00:0f:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

interface Node {
  tag: string;
  attrs: Record<string, unknown>;
  children: unknown[];
}

/** Text of a stub node tree (strings and numbers as they are). */
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

function loadView(lab: DaemonLab, calls: Array<[string, BlobmsgTable]>) {
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
  const modal: { body?: unknown } = {};
  const context = vm.createContext({
    _: (s: string) => s,
    E,
    L: { bind: (fn: (...a: unknown[]) => unknown, ctx: unknown) => fn.bind(ctx), hasViewPermission: () => true },
    cbi_update_table: (
      table: Node & { rows?: unknown[]; placeholder?: unknown },
      rows: unknown[],
      placeholder: unknown,
    ) => {
      table.rows = rows;
      table.placeholder = placeholder;
    },
    window: { setTimeout },
  });
  // LuCI's String.prototype.format, for the conversions these views use on time sessions (%s %d %t).
  vm.runInContext(
    'String.prototype.format = function () { var a = arguments, i = 0; return this.replace(/%[sdt]/g, function ' +
      '() { return String(a[i++]); }); };',
    context,
  );
  const rpc = {
    declare:
      (o: { object: string; method: string; params?: string[] }) =>
      async (...args: unknown[]) => {
        const params: BlobmsgTable = {};
        (o.params ?? []).forEach((p, i) => {
          if (args[i] !== undefined) params[p] = args[i] as never;
        });
        if (o.object !== 'sluice') return {};
        calls.push([o.method, params]);
        const r = await lab.callStatus(o.method, params);
        // As LuCI's rpc.js without `expect`/`reject`: a failing call resolves to its reply (or the bare status).
        return r.status === 0 ? r.data : (r.data ?? r.status);
      },
    getStatusText: (n: number) => `status ${n}`,
  };
  const common = vm.runInContext(
    `(function (baseclass, fs, rpc) {\n${readFileSync(join(RES, 'sluice/common.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, { exec: async () => ({ code: 0 }) }, rpc);
  const dom = {
    content: (node: Node, children: unknown) => {
      node.children = Array.isArray(children) ? children : [children];
    },
    parent: () => null,
  };
  const ui = {
    addNotification: (_t: unknown, body: unknown) => {
      notifications.push(text(body));
    },
    createHandlerFn:
      (ctx: any, fn: any, ...bound: unknown[]) =>
      (...a: unknown[]) =>
        (typeof fn === 'string' ? ctx[fn] : fn).apply(ctx, bound.concat(a)),
    showModal: (_t: unknown, body: unknown) => {
      modal.body = body;
    },
    hideModal() {},
  };
  const view = vm.runInContext(
    `(function (view, dom, poll, ui, common) {\n${readFileSync(join(RES, 'view/sluice/sessions.js'), 'utf8')}\n})`,
    context,
  )({ extend: (o: unknown) => o }, dom, { add() {} }, ui, common);
  return { view, notifications, context, common, modal };
}

test('Sessions page: one page at a time from the daemon, filter as state, Previous/Next, Gate pending', async () => {
  // The portal over its control socket: this page's test is not about the ndsctl command path, and 20 gates opened
  // at start through a node process each keep the daemon from starting in time on a loaded machine.
  const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true });
  try {
    const manager = await SessionManager.open({ store: new JournalStore({ dir: join(lab.dir, 'state') }) });
    for (let i = 0; i < COUNT; i++) {
      await manager.activate({
        mac: macOf(i),
        metric: 'seconds',
        allotment: 3600n,
        user: `guest-${i}`,
        payment: { method: 'grant', reference: `grant-fill-${i}`, amount: 0n, asset: '', at: Date.now() },
      });
    }
    for (let i = 0; i < ENDED; i++) await manager.end(manager.byMac(macOf(i))!.id, 'admin');
    await manager.close();
    // Only the devices of the last page are on the portal (opening 220 gates at start is slow on a loaded machine);
    // the rest stay gate-pending, which is what the last page's check needs to tell apart.
    for (let i = 200 + ENDED; i < COUNT; i++) lab.portal.addClient(macOf(i), `10.1.${i >> 8}.${i & 255}`);
    await lab.startDaemon();

    const calls: Array<[string, BlobmsgTable]> = [];
    const { view, notifications } = loadView(lab, calls);
    view.render(await view.load());
    // The page's own pages (limit 100); the live counts of the status block read pages of 500 beside them.
    const sessionsCalls = () => calls.filter(([m, p]) => m === 'sessions' && p.limit !== 500).map(([, p]) => p);
    assert.equal(
      sessionsCalls().at(-1),
      { state: 'LIVE', offset: 0, limit: 100 },
      'the live filter pages on the daemon',
    );
    assert.is(view.table.rows.length, 100);
    assert.is(text(view.pager), `« Previous 1–100 of ${COUNT - ENDED} Next »`);
    const [prev, next] = buttons(view.pager);
    assert.is(prev!.attrs.disabled, '', 'no previous page');

    await (next!.attrs.click as () => Promise<void>)();
    assert.equal(sessionsCalls().at(-1), { state: 'LIVE', offset: 100, limit: 100 });
    assert.is(text(view.pager), `« Previous 101–200 of ${COUNT - ENDED} Next »`);
    assert.is(view.table.rows[0][0], macOf(ENDED + 100), 'oldest first, page two');
    await view.handlePage(1);
    assert.is(view.table.rows.length, COUNT - ENDED - 200);
    assert.is(buttons(view.pager)[1]!.attrs.disabled, '', 'no next page after the last');

    // Ended: the daemon filters; no Disconnect/Extend on those rows; one page, so no pager.
    await view.handleFilter({ currentTarget: { value: 'ended' } });
    assert.equal(sessionsCalls().at(-1), { state: 'ENDED', offset: 0, limit: 100 });
    assert.is(view.table.rows.length, ENDED);
    assert.is(text(view.pager), '');
    assert.ok(view.table.rows.every((r: unknown[]) => buttons(r.at(-1)).length === 0));

    // A grant to a device the portal does not list: the row says Gate pending, not Active.
    const granted = await lab.call('grant', { mac: NOT_ON_PORTAL, seconds: 600 });
    assert.ok(granted.gate === 'pending' || granted.gate === 'opening', String(granted.gate));
    await lab.waitFor(async () => (await lab.session(NOT_ON_PORTAL)).gate === 'pending', 10_000, 'gate pending');
    await view.handleFilter({ currentTarget: { value: 'live' } });
    await view.handlePage(2);
    const row = view.table.rows.find((r: unknown[]) => r[0] === NOT_ON_PORTAL);
    assert.ok(row, 'the granted session is on the last page');
    assert.is(text(row[6]), 'Gate pending');
    // Its clock starts when the gate opens: nothing used yet and no end time (the stub's %t prints seconds as they
    // are).
    assert.equal([text(row[4]), text(row[5])], ['0 / 600', '600']);
    assert.match(text(row[7]), /600 after it joins$/);
    const other = view.table.rows.find((r: unknown[]) => r[0] !== NOT_ON_PORTAL);
    assert.is(text(other[6]), 'Active');
    assert.equal(notifications, []);
  } finally {
    await lab.close();
  }
});

test(
  'Sessions page: Paid in the currency of a plan with ' + "the payment's asset when the session's plan is gone",
  async () => {
    const USDC = '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913';
    const lab = await DaemonLab.create({
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: `
config pricing 'hour'
\toption metric 'seconds'
\toption step_size '3600'
\toption price_per_step '250000'
\toption asset '${USDC}'
\toption currency 'USDC'
\toption decimals '6'
\toption min_steps '1'
\toption max_steps '24'
`,
    });
    try {
      const manager = await SessionManager.open({ store: new JournalStore({ dir: join(lab.dir, 'state') }) });
      // Sold under a plan since renamed in Settings (asset in another case, as a wallet may write it), and one in an
      // asset no plan has.
      await manager.activate({
        mac: macOf(1),
        metric: 'seconds',
        allotment: 7200n,
        plan: 'hour-old',
        payment: { method: 'x402', reference: '0xlab1', amount: 500000n, asset: USDC.toLowerCase(), at: Date.now() },
      });
      await manager.activate({
        mac: macOf(2),
        metric: 'seconds',
        allotment: 3600n,
        plan: 'gone',
        payment: {
          method: 'x402',
          reference: '0xlab2',
          amount: 700n,
          asset: '0x00000000000000000000000000000000000000aa',
          at: Date.now(),
        },
      });
      await manager.close();
      await lab.startDaemon();
      const { view, context, common } = loadView(lab, []);
      view.render(await view.load());
      const paidOf = (mac: string) => text(view.table.rows.find((r: unknown[]) => r[0] === mac)![8]);
      assert.is(paidOf(macOf(1)), '0.5 USDC');
      assert.is(paidOf(macOf(2)), '700 units', 'not passed off as a price');

      // Status → Overview: both count in today's revenue (before, a session of a plan gone from Settings was left out).
      const widget = vm.runInContext(
        `(function (baseclass, common) {\n${readFileSync(join(RES, 'view/status/include/90_sluice.js'), 'utf8')}\n})`,
        context,
      )({ extend: (o: unknown) => o }, common);
      assert.match(text(widget.render(await widget.load())), 'Revenue today0.5 USDC, 700 units');
    } finally {
      await lab.close();
    }
  },
);

test(
  'Sessions page against the daemon: a purchase shared by several devices lists its joined device; Remove and ' +
    'Move to MAC go to the daemon, its refusals in its words',
  async () => {
    const BUYER = macOf(0x101),
      JOINED = macOf(0x102),
      OTHER = macOf(0x103),
      NEW = macOf(0x104);
    const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true });
    try {
      const manager = await SessionManager.open({ store: new JournalStore({ dir: join(lab.dir, 'state') }) });
      const pay = (ref: string) => ({ method: 'grant', reference: ref, amount: 0n, asset: '', at: Date.now() });
      const { session } = await manager.activate({
        mac: BUYER,
        metric: 'seconds',
        allotment: 3600n,
        devices: 3,
        payment: pay('grant-shared'),
      });
      await manager.joinDevice(manager.joinCode(session.id)!, JOINED);
      await manager.activate({ mac: OTHER, metric: 'seconds', allotment: 3600n, payment: pay('grant-other') });
      await manager.close();
      for (const [i, mac] of [BUYER, JOINED, OTHER, NEW].entries()) lab.portal.addClient(mac, `10.2.0.${i + 10}`);
      await lab.startDaemon();

      const calls: Array<[string, BlobmsgTable]> = [];
      const { view, notifications, modal } = loadView(lab, calls);
      view.render(await view.load());
      const rowOf = (mac: string) => view.table.rows.find((r: unknown[]) => r[0] === mac);
      assert.match(text(rowOf(BUYER)[1]), `2 of 3 devices${JOINED} Remove`);
      const click = async (b: Node | undefined) => {
        assert.ok(b);
        await (b!.attrs.click as () => unknown)();
      };
      const modalButton = (label: string) => buttons(modal.body).find((b) => text(b) === label);

      // Remove: the daemon takes the joined device out; the session goes on for the buyer.
      await click(buttons(rowOf(BUYER)[1]).find((b) => text(b) === 'Remove'));
      await click(modalButton('Remove'));
      assert.equal(calls.filter(([m]) => m === 'remove_device').at(-1), ['remove_device', { mac: JOINED }]);
      assert.is(notifications.at(-1), `Removed ${JOINED} from the session of ${BUYER}`);
      assert.equal((await lab.session(BUYER)).devices, [BUYER]);
      assert.match(text(rowOf(BUYER)[1]), '1 of 3 devices');

      // Move onto a MAC with a live session of its own: the daemon refuses, in its words; to a free MAC it moves.
      const move = async (to: string) => {
        await click(buttons(rowOf(BUYER) ?? rowOf(NEW)).find((b) => text(b) === 'Move'));
        ((modal.body as unknown[])[0] as any).querySelector = () => ({ value: to });
        await click(modalButton('Move'));
      };
      await move(OTHER);
      assert.match(notifications.at(-1)!, /^sluice: .*02:00:00:0f:01:03/);
      assert.is((await lab.session(OTHER)).mac, OTHER);
      await move(NEW.toUpperCase().replaceAll(':', '-'));
      assert.equal(calls.filter(([m]) => m === 'move').at(-1), ['move', { id: session.id, to: NEW }]);
      assert.is(notifications.at(-1), `Moved the session of ${BUYER} to ${NEW}`);
      assert.is((await lab.session(NEW)).id, session.id);
    } finally {
      await lab.close();
    }
  },
);

test.run();
