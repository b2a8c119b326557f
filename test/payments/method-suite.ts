/**
 * One behaviour suite for every payment method (STYLE.md points 10 and 13, in the manner of MQTT.js's abstract client
 * tests): `paymentMethodSuite(name, makeRig)` registers the money rules as uvu tests against a method's rig, and
 * method-rigs.ts runs it for every method of payments/plugins.ts and the built-ins, so a method gets these checks by
 * joining the list. The rules are the ones attack tests kept finding broken one method at a time:
 *  - precheck moves no money, whether it passes or throws (chain balances and the method's state files);
 *  - authorize returns the reference precheck announced;
 *  - a payment pays for one purchase by one device, ever: replayed from the same device, another device, after a used
 *    ceiling, a zero-usage end, a refund, a restart of the daemon — refused (ERR_PAYMENT_REPLAYED or the method's
 *    documented equivalent) and nothing moves;
 *  - a refused purchase moves no money;
 *  - a restart resolves a purchase whose authorize a kill -9 interrupted: one session and the money of one purchase,
 *    or no session and no money.
 * The rules about a purchase run against the real daemon (DaemonLab) over ubus; precheck and authorize are called on
 * the method itself, opened in this process from the daemon's own config by its plugin (own state directory).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfigPartial } from '../../src/config/load-file.ts';
import { SluiceError } from '../../src/errors.ts';
import { Pricing } from '../../src/merchant/index.ts';
import { builtinPaymentMethods } from '../../src/payments/builtin.ts';
import { PAYMENT_PLUGINS } from '../../src/payments/index.ts';
import { EndRecordsTap } from '../../src/sessions/index.ts';
import type { UpstreamSink } from '../../src/upstream/index.ts';
import type { PaymentFields, PaymentMethod } from '../../src/payments/index.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import type { BackgroundPass } from '../../src/payments/plugin.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import type { DaemonLab } from '../daemon/harness.ts';
import { recordingLog } from '../helpers/log.ts';

/** Two hex digits of a number's low byte, for a MAC's part. */
const hexByte = (n: number): string => (n & 255).toString(16).padStart(2, '0');

/** One payment a rig made: what ubus `purchase` (or the method's own call) is sent, and its reference if known. */
export interface RigPayment {
  fields: PaymentFields;
  /** The reference the method's precheck announces and the session's payment carries; null: the method makes one. */
  reference: string | null;
  /** Rig-private data (the buyer, a channel id, …). */
  [key: string]: unknown;
}

/** Which rules apply: a rule a method has no part for is left out (and its absence written in the rig). */
export interface MethodRules {
  /** A ceiling the session can use up (upto, batch-settlement): replayed after it is used. */
  ceiling: boolean;
  /** Money goes back after the end (batch-settlement's refund, escrow's close): replayed after it. */
  refund: boolean;
  /** authorize moves money through a peer call the rig can hold, with its intent on flash before it (two-phase). */
  pending: boolean;
}

export interface MethodRig {
  readonly lab: DaemonLab;
  readonly rules: MethodRules;
  /** What a replay may be refused with: ERR_PAYMENT_REPLAYED and the method's documented equivalents. */
  readonly replayCodes: readonly string[];
  /** What a retry of an interrupted purchase may be answered while it is still being resolved. */
  readonly pendingCodes?: readonly string[];
  /** The plan a purchase is of (bytes: the suite uses up a ceiling with traffic) and its allotment. */
  readonly plan: { id: string; steps?: bigint; allotment: bigint };
  /** A fresh valid payment for one purchase. */
  payment(): Promise<RigPayment>;
  /** A payment the method refuses before any money moves (a local check its precheck makes). */
  badPayment(): Promise<RigPayment>;
  /** Everything that counts as money for this payment (balances, channel, the daemon's method state), comparable. */
  money(payment: RigPayment): Promise<unknown>;
  /** Resolves once the method's work after the end of this payment's session (settle, claim, refund, close) is done. */
  settledAfterEnd(payment: RigPayment): Promise<void>;
  /** Buys over ubus (default `purchase` with the rig's plan); a method sold elsewhere (the admin's grant) says how. */
  buy?(mac: string, payment: RigPayment): Promise<{ status: number; data: Record<string, unknown> | undefined }>;
  /**
   * Arranges that the next purchase's authorize stops at its irreversible call (the peer holds it unanswered);
   * resolves when a purchase got there (its intent is on flash). Only with `rules.pending`.
   */
  holdAuthorize?(payment: RigPayment): Promise<void>;
  /**
   * Copies into the in-process method's own state directory what its payments need there (printed vouchers: the
   * daemon's book and key, so a code the daemon printed is one the in-process method knows).
   */
  seedState?(stateDir: string): void;
  close(): Promise<void>;
}

let macSeq = 0;
/** A device on the WiFi: listed by the portal stand-in, so the gate can open for it. */
function newDevice(lab: DaemonLab): string {
  const n = ++macSeq;
  const mac = `02:00:00:5e:${hexByte(n >> 8)}:${hexByte(n)}`;
  lab.portal.addClient(mac, `10.0.${(n >> 8) & 255}.${n & 255 || 1}`);
  return mac;
}

type Reply = { status: number; data: Record<string, unknown> | undefined };
const codeOf = (r: Reply): string | undefined => (r.data?.error as { code?: string } | undefined)?.code;
const show = (r: Reply): string => JSON.stringify(r.data);

/** Every file under `dir`, by path, as a hash: the method's state, byte for byte. */
function filesOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[path.slice(dir.length)] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/**
 * The method named `name`, opened in this process by its plugin from the daemon's config, in a state dir of its own.
 */
async function openInProcess(
  name: string,
  configPath: string,
  seedState?: (stateDir: string) => void,
): Promise<{ method: PaymentMethod; pricing: Pricing; stateDir: string; close(): Promise<void> }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-method-suite-'));
  seedState?.(stateDir);
  // As the daemon reads it (a problem in a part the method does not use leaves that part at its defaults).
  const { config: loaded } = await loadConfigPartial(configPath);
  const config = { ...loaded, main: { ...loaded.main, stateDir } };
  const pricing = new Pricing(config.pricing);
  const builtin = builtinPaymentMethods().find((m) => m.name === name);
  if (builtin)
    return {
      method: builtin,
      pricing,
      stateDir,
      close: async () => rmSync(stateDir, { recursive: true, force: true }),
    };
  const plugin = PAYMENT_PLUGINS.find((p) => p.name === name);
  if (!plugin) throw new Error(`no plugin ${name} in payments/plugins.ts`);
  const store = new MemoryStore();
  const sessions = new SessionManager({ store });
  await sessions.recover();
  const log = recordingLog(() => {});
  // Its background passes are never started here, and stopped at the close as its host would; a sink it brings is
  // not started (its sockets opened on demand, RADIUS's auth client for its vouchers) and closed at the close.
  const passes: BackgroundPass[] = [];
  const sinks: UpstreamSink[] = [];
  const part = await plugin.open({
    config,
    atStart: true,
    sessions,
    log,
    endsWritten: new EndRecordsTap(store),
    // No gate here: the contract checks below grant no session.
    gate: { hold: async () => true, release: async () => true, closed: async () => true },
    stepSizeOf: (plan) => pricing.list().find((p) => p.id === plan)?.stepSize,
    recovered: () => ({ active: [], ended: [] }),
    shaper: null,
    command: async () => {
      throw new Error('no admin methods in the money rules');
    },
    methodBehind: () => null,
    onSession: sessions.on.bind(sessions),
    stats: () => undefined,
    // What a method announces is not heard here: the money rules are about what it takes and sells.
    announce: { upstream: { escrowClosed: () => undefined }, events: { method: () => undefined } },
    // The money rules run on the method alone: a door it brings is not opened here.
    door: () => undefined,
    sink: (sink) => void sinks.push(sink),
    background: (pass) => void passes.push(pass),
  });
  const method = part.methods.find((m) => m.name === name) ?? part.methods[0];
  if (!method) throw new Error(`plugin ${name} opened no method`);
  return {
    method,
    pricing,
    stateDir,
    close: async () => {
      for (const pass of passes) await pass.stop();
      for (const sink of sinks) await sink.close();
      await part.close?.();
      await sessions.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export function paymentMethodSuite(name: string, makeRig: () => Promise<MethodRig>): void {
  const it = suite(`PaymentMethod suite: ${name}`);
  // uvu's reporter splits an error's `details` as a string; a SluiceError's are an object: shown as its code instead.
  const test = (title: string, fn: () => Promise<void>): void =>
    it(title, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof SluiceError) throw new Error(`${err.code}: ${err.message}`, { cause: err });
        throw err;
      }
    });
  let rig: MethodRig;
  /** A rule the method has no part for passes, and says so (`# ` lines show for a green file). */
  const notApplicable = (why: string): void => {
    console.log(`# PaymentMethod suite: ${name}: ${why}, rule not applicable`);
  };

  it.before(async () => {
    rig = await makeRig();
  });
  it.after(async () => {
    await rig?.close();
  });

  const buy = (mac: string, p: RigPayment): Promise<Reply> =>
    rig.buy
      ? rig.buy(mac, p)
      : rig.lab.callStatus('purchase', {
          mac,
          plan: rig.plan.id,
          ...(rig.plan.steps !== undefined && { steps: String(rig.plan.steps) }),
          payment: p.fields,
        } as never);

  /** Live and ended sessions whose payments carry the reference (by MAC when the method makes the reference itself). */
  async function holders(p: RigPayment, mac: string): Promise<number> {
    const all = (await rig.lab.call('sessions', { limit: 500 } as never)).sessions as Array<Record<string, unknown>>;
    return all.filter((s) =>
      p.reference === null
        ? s.mac === mac
        : (s.payments as Array<Record<string, unknown>>).some((q) => q.reference === p.reference),
    ).length;
  }

  async function bought(mac: string, p: RigPayment): Promise<Record<string, unknown>> {
    const r = await buy(mac, p);
    assert.is(r.status, 0, `the purchase goes through: ${show(r)}`);
    const session = r.data!.session as Record<string, unknown>;
    if (p.reference !== null) {
      assert.ok(
        (session.payments as Array<Record<string, unknown>>).some((q) => q.reference === p.reference),
        `the session carries the reference precheck announced (${p.reference}): ${JSON.stringify(session.payments)}`,
      );
    }
    return session;
  }

  /** The payment again, from `mac`: refused as a replay, no money moves, no session holds it twice. */
  async function replayRefused(
    mac: string,
    p: RigPayment,
    before: unknown,
    firstMac: string,
    what: string,
  ): Promise<void> {
    const r = await buy(mac, p);
    assert.ok(
      r.status !== 0 && rig.replayCodes.includes(codeOf(r) ?? ''),
      `${what}: refused as a replay (${rig.replayCodes.join(' or ')}), got status ${r.status} ${show(r)}`,
    );
    assert.equal(await rig.money(p), before, `${what}: nothing moved`);
    assert.is(await holders(p, firstMac), 1, `${what}: one session holds the payment`);
    if (mac !== firstMac)
      assert.is((await rig.lab.callStatus('session', { mac })).status, 4, `${what}: no session for the other device`);
  }

  async function ended(mac: string): Promise<void> {
    await rig.lab.waitFor(
      async () => {
        const s = await rig.lab.callStatus('session', { mac });
        return s.status === 0 && (s.data!.session as Record<string, unknown>).state !== 'ACTIVE';
      },
      60_000,
      `the session of ${mac} ended`,
    );
  }

  /** Waits until traffic from now on is billed: a meter tick dispatched after the session started has committed. */
  async function billedFromNow(): Promise<void> {
    const ticks = async (): Promise<number> => ((await rig.lab.call('stats')).meter as { ticks_ok: number }).ticks_ok;
    const from = await ticks();
    await rig.lab.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'a meter tick after the session started');
  }

  test('precheck moves no money, whether it passes or throws', async () => {
    const opened = await openInProcess(name, rig.lab.configPath, rig.seedState?.bind(rig));
    try {
      const { method } = opened;
      if (!method.precheck) return notApplicable('no precheck');
      for (const p of [await rig.payment(), await rig.badPayment()]) {
        const ctx = contextOf(method, opened.pricing, rig.plan, p, newDevice(rig.lab));
        const money = await rig.money(p);
        const files = filesOf(opened.stateDir);
        try {
          await method.precheck(ctx);
        } catch (err) {
          if (!(err instanceof SluiceError)) throw err;
        }
        assert.equal(await rig.money(p), money, "balances and the daemon's state unchanged");
        assert.equal(filesOf(opened.stateDir), files, "the method's state files unchanged");
      }
    } finally {
      await opened.close();
    }
  });

  test("the bad payment is refused by precheck (the rig's refusal is a check that moves no money)", async () => {
    const opened = await openInProcess(name, rig.lab.configPath, rig.seedState?.bind(rig));
    try {
      const { method } = opened;
      if (!method.precheck) return notApplicable("no precheck: refused by the merchant's own checks");
      const p = await rig.badPayment();
      const ctx = contextOf(method, opened.pricing, rig.plan, p, newDevice(rig.lab));
      const refused = await Promise.resolve()
        .then(() => method.precheck!(ctx))
        .then(
          () => null,
          (err: unknown) => err,
        );
      assert.instance(refused, SluiceError, `precheck refuses it with a SluiceError, got ${String(refused)}`);
    } finally {
      await opened.close();
    }
  });

  test('authorize returns the reference precheck announced', async () => {
    const opened = await openInProcess(name, rig.lab.configPath, rig.seedState?.bind(rig));
    try {
      const { method } = opened;
      const p = await rig.payment();
      const ctx = contextOf(method, opened.pricing, rig.plan, p, newDevice(rig.lab));
      const announced = await method.precheck?.(ctx);
      const paid = await method.authorize(ctx);
      assert.is(paid.method, method.name);
      assert.ok(typeof paid.reference === 'string' && paid.reference !== '', 'a reference');
      if (announced?.reference !== undefined) assert.is(paid.reference, announced.reference);
      if (p.reference !== null)
        assert.is(announced?.reference, p.reference, "precheck announces the payment's own reference");
      await method.release?.(paid, new Error('the suite grants no session in process'));
    } finally {
      await opened.close();
    }
  });

  test(
    'a payment pays once: replayed from the same device ' + 'and from another device, refused, nothing moves',
    async () => {
      const p = await rig.payment();
      const mac = newDevice(rig.lab);
      await bought(mac, p);
      const after = await rig.money(p);
      await replayRefused(mac, p, after, mac, 'same device');
      await replayRefused(newDevice(rig.lab), p, after, mac, 'another device');
    },
  );

  test('replayed after a zero-usage end: refused, nothing moves', async () => {
    const p = await rig.payment();
    const mac = newDevice(rig.lab);
    await bought(mac, p);
    assert.is((await rig.lab.callStatus('terminate', { mac })).status, 0);
    await rig.settledAfterEnd(p);
    const after = await rig.money(p);
    await replayRefused(mac, p, after, mac, 'same device');
    await replayRefused(newDevice(rig.lab), p, after, mac, 'another device');
  });

  test('replayed after its ceiling was used: refused, nothing moves', async () => {
    if (!rig.rules.ceiling) return notApplicable('no ceiling to use up');
    const p = await rig.payment();
    const mac = newDevice(rig.lab);
    await bought(mac, p);
    await billedFromNow();
    rig.lab.portal.addTraffic(mac, Number(rig.plan.allotment), 0);
    await ended(mac);
    await rig.settledAfterEnd(p);
    const after = await rig.money(p);
    await replayRefused(mac, p, after, mac, 'same device');
    await replayRefused(newDevice(rig.lab), p, after, mac, 'another device');
  });

  test('replayed after a refund: refused, nothing moves', async () => {
    if (!rig.rules.refund) return notApplicable('no refund');
    const p = await rig.payment();
    const mac = newDevice(rig.lab);
    await bought(mac, p);
    await billedFromNow();
    // Part of the ceiling used: what is left goes back.
    rig.lab.portal.addTraffic(mac, Number(rig.plan.allotment / 4n), 0);
    await rig.lab.waitFor(async () => BigInt(String((await rig.lab.session(mac)).used)) > 0n, 60_000, 'usage counted');
    assert.is((await rig.lab.callStatus('terminate', { mac })).status, 0);
    await rig.settledAfterEnd(p);
    const after = await rig.money(p);
    await replayRefused(mac, p, after, mac, 'same device');
    await replayRefused(newDevice(rig.lab), p, after, mac, 'another device');
  });

  test('replayed after a restart of the daemon: refused, nothing moves', async () => {
    const p = await rig.payment();
    const mac = newDevice(rig.lab);
    await bought(mac, p);
    const done = await rig.payment();
    const endedMac = newDevice(rig.lab);
    await bought(endedMac, done);
    assert.is((await rig.lab.callStatus('terminate', { mac: endedMac })).status, 0);
    await rig.settledAfterEnd(done);
    await rig.lab.stopDaemon('SIGTERM');
    await rig.lab.startDaemon();
    await replayRefused(mac, p, await rig.money(p), mac, 'live session, same device');
    await replayRefused(newDevice(rig.lab), p, await rig.money(p), mac, 'live session, another device');
    await replayRefused(endedMac, done, await rig.money(done), endedMac, 'ended session, same device');
    await replayRefused(newDevice(rig.lab), done, await rig.money(done), endedMac, 'ended session, another device');
  });

  test('a refused purchase moves no money', async () => {
    const p = await rig.badPayment();
    const mac = newDevice(rig.lab);
    const before = await rig.money(p);
    const r = await buy(mac, p);
    assert.is.not(r.status, 0, `refused: ${show(r)}`);
    assert.equal(await rig.money(p), before, 'nothing moved');
    assert.is((await rig.lab.callStatus('session', { mac })).status, 4, 'no session');
  });

  test(
    "a restart resolves a purchase a kill -9 interrupted in authorize: one session and one purchase's money, or " +
      'none',
    async () => {
      if (!rig.rules.pending || !rig.holdAuthorize) return notApplicable('authorize makes no peer call to interrupt');
      // What one purchase moves, measured on an uninterrupted one.
      const plain = await rig.payment();
      const before = await rig.money(plain);
      await bought(newDevice(rig.lab), plain);
      const onePurchase = delta(before, await rig.money(plain));

      const p = await rig.payment();
      const mac = newDevice(rig.lab);
      const start = await rig.money(p);
      const reached = rig.holdAuthorize(p);
      const inFlight = buy(mac, p).catch(() => undefined); // answered by nobody: the daemon dies during it
      await reached;
      await rig.lab.stopDaemon('SIGKILL');
      // A new connection first: the call in flight then fails at once instead of waiting out ubus's 20 s timeout.
      await rig.lab.reconnectClient();
      await inFlight;
      await rig.lab.startDaemon();
      // The customer retries until the method has decided (the resolver may grant it first: then a retry is a replay).
      let answer: Reply | undefined;
      await rig.lab.waitFor(
        async () => {
          answer = await buy(mac, p);
          return !(rig.pendingCodes ?? []).includes(codeOf(answer) ?? '');
        },
        120_000,
        'the interrupted purchase decided',
      );
      const moved = delta(start, await rig.money(p));
      const sessions = await holders(p, mac);
      console.log(
        `# PaymentMethod suite: ${name}: the purchase interrupted in authorize → ${sessions} session(s) after ` +
          'the restart',
      );
      if (sessions === 0) {
        assert.equal(moved, delta(start, start), `no session, so nothing moved (last answer ${show(answer!)})`);
      } else {
        assert.is(sessions, 1, 'one session for the payment');
        assert.equal(moved, onePurchase, 'the money of one purchase');
      }
      if (sessions === 1) await replayRefused(mac, p, await rig.money(p), mac, 'after the restart');
    },
  );

  it.run();
}

/** Elementwise difference of two money readings of the same shape (bigint or number leaves). */
function delta(a: unknown, b: unknown): unknown {
  if (typeof a === 'bigint' && typeof b === 'bigint') return b - a;
  if (typeof a === 'number' && typeof b === 'number') return b - a;
  if (Array.isArray(a) && Array.isArray(b)) return a.map((x, i) => delta(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    return Object.fromEntries(
      Object.keys(a).map((k) => [k, delta((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])]),
    );
  }
  return a === b ? null : { from: a, to: b };
}

/** The PaymentContext the merchant would hand the method for this payment (its quoteFor decides, as in merchant.ts). */
function contextOf(
  method: PaymentMethod,
  pricing: Pricing,
  plan: MethodRig['plan'],
  p: RigPayment,
  mac: string,
): PaymentContext {
  const request = { mac, plan: plan.id, ...(plan.steps !== undefined && { steps: plan.steps }), payment: p.fields };
  const quote = method.quoteFor
    ? method.quoteFor(request, (input) => pricing.quote(plan.id, input))
    : pricing.quote(plan.id, { ...(plan.steps !== undefined && { steps: plan.steps }) });
  return { quote, request, now: Date.now() };
}
