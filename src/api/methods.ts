/**
 * The `sluice` ubus object as a table: each method declares its arguments (checked once, before the handler) and
 * whether it is admin-only. Admin methods are separate methods, not flags on shared ones, so an rpcd/ubusd ACL can
 * give a portal `purchase`, `quote` and `session` without `terminate` or `grant`. Each handler's argument type comes
 * from its own policy (ArgsOf), so what the policy checks is what the handler may assume, without casts.
 */
import { checkArgs, signatureOf, InvalidArgumentError } from './args.ts';
import { SluiceError } from '../errors.ts';
import { paymentOf } from './payment.ts';
import { planView, quoteView, sessionView } from './view.ts';
import type { SluiceBackend } from './backend.ts';
import { REGISTERED, type RegisteredPlugin } from '../payments/index.ts';
import { toBlobmsgTable } from './plain.ts';
import { salesReply } from './sales.ts';
import { VENUE_METHODS } from './venue-methods.ts';
import { extendCap } from './extend-cap.ts';
import { method, type ApiMethod } from './method.ts';
import { parseRate } from '../portal/index.ts';
import { SESSION_STATES, TERMINATE_CAUSES, isLive, limitsAfter, type Session } from '../sessions/index.ts';

const mac = { kind: 'mac', required: true } as const;

/** `sessions` pages: a reply of the default size always fits a ubus message (1 MiB), and so does the largest. */
export const SESSIONS_DEFAULT_LIMIT = 100;
export const SESSIONS_MAX_LIMIT = 500;
/** `state` filters beyond the four states: LIVE = PENDING or ACTIVE, ENDED = EXPIRED or TERMINATED. */
const SESSION_GROUPS = ['LIVE', 'ENDED'] as const;
type SessionGroup = (typeof SESSION_GROUPS)[number];
const isGroup = (s: string): s is SessionGroup => (SESSION_GROUPS as readonly string[]).includes(s);
const optionalText = { kind: 'string', maxLength: 253 } as const;

/** `gate` of a live session (open / pending) in `session`, `sessions` and `change`; ended sessions have none. */
function gateField(session: Session, backend: SluiceBackend): { gate?: 'open' | 'pending' } {
  if (!isLive(session)) return {};
  return backend.gateOf ? { gate: backend.gateOf(session.mac) } : {};
}

/**
 * The ubus methods the payment plugins of a list registered, in the list's order: each is served whether or not its
 * method runs (the ACL names it), and its handler gets its method's face from the backend (null: not running).
 */
function pluginMethods(registered: readonly RegisteredPlugin[]): Record<string, ApiMethod> {
  const methods: Record<string, ApiMethod> = {};
  for (const { plugin, ubusMethods } of registered) {
    for (const [name, declared] of Object.entries(ubusMethods)) {
      if (name in methods) throw new Error(`ubus method ${name} is declared by two payment plugins`);
      methods[name] = {
        args: declared.args,
        adminOnly: declared.adminOnly,
        async handler(args, backend) {
          return toBlobmsgTable(await declared.handler(args, backend.paymentFace?.(plugin.name) ?? null));
        },
      };
    }
  }
  return methods;
}

/**
 * Looked up by name, so each entry is seen here as ApiMethod<ArgSpecs> (a method's parameter is bivariant): sound
 * because invokeMethod only ever hands a handler what checkArgs made of its own `args`.
 */
const OWN_METHODS: Readonly<Record<string, ApiMethod>> = {
  purchase: method({
    args: {
      mac,
      ip: optionalText,
      user: optionalText,
      plan: { kind: 'string', maxLength: 64 },
      amount: { kind: 'amount' },
      steps: { kind: 'count' },
      payment: { kind: 'table', required: true },
    },
    adminOnly: false,
    async handler(a, backend) {
      const { payment, ...fields } = a;
      const outcome = await backend.purchase({ ...fields, ...paymentOf(payment) });
      return {
        session: sessionView(outcome.session, backend.now()),
        topped_up: outcome.toppedUp,
        gate: outcome.gate,
        ...(outcome.quote && { quote: quoteView(outcome.quote) }),
      };
    },
  }),
  quote: method({
    args: { plan: { kind: 'string', maxLength: 64 }, amount: { kind: 'amount' }, steps: { kind: 'count' } },
    adminOnly: false,
    handler(a, backend) {
      return { quote: quoteView(backend.quote(a)) };
    },
  }),
  session: method({
    args: { mac: { kind: 'mac' }, id: { kind: 'string', maxLength: 64 } },
    adminOnly: false,
    handler(a, backend) {
      if (a.mac === undefined && a.id === undefined) throw new InvalidArgumentError('mac', 'mac or id is required');
      const session = backend.session(a);
      if (!session) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no session for ${a.mac ?? a.id}`);
      const extra = backend.sessionFields?.(session) ?? {};
      return { session: { ...sessionView(session, backend.now()), ...gateField(session, backend), ...extra } };
    },
  }),
  sessions: method({
    args: {
      state: { kind: 'string', oneOf: [...SESSION_STATES, ...SESSION_GROUPS] },
      user: optionalText,
      mac: { kind: 'mac' },
      offset: { kind: 'count' },
      limit: { kind: 'count' },
    },
    adminOnly: false,
    handler(a, backend) {
      const now = backend.now();
      const state = a.state;
      const offset = Number(a.offset ?? 0n);
      const requested = a.limit;
      if (requested !== undefined && (requested < 1n || requested > BigInt(SESSIONS_MAX_LIMIT))) {
        throw new InvalidArgumentError('limit', `must be between 1 and ${SESSIONS_MAX_LIMIT}`);
      }
      const limit = requested === undefined ? SESSIONS_DEFAULT_LIMIT : Number(requested);
      let list = backend.sessions({
        ...(state !== undefined && !isGroup(state) && { state }),
        ...(a.user !== undefined && { user: a.user }),
        ...(a.mac !== undefined && { mac: a.mac }),
      });
      if (state !== undefined && isGroup(state)) list = list.filter((s) => (state === 'LIVE') === isLive(s));
      const page = list.slice(offset, offset + limit);
      return {
        sessions: page.map((s) => ({ ...sessionView(s, now), ...gateField(s, backend) })),
        total: list.length,
        offset,
        limit,
        more: offset + page.length < list.length,
      };
    },
  }),
  terminate: method({
    args: { mac, cause: { kind: 'string', oneOf: TERMINATE_CAUSES } },
    adminOnly: true,
    async handler(a, backend) {
      const { session, gate } = await backend.terminate(a.mac, a.cause ?? 'admin');
      return { session: sessionView(session, backend.now()), gate };
    },
  }),
  grant: method({
    args: {
      mac,
      seconds: { kind: 'count' },
      bytes: { kind: 'count' },
      ip: optionalText,
      user: optionalText,
      plan: optionalText,
      idempotency_key: { kind: 'string', maxLength: 200 },
      devices: { kind: 'count' },
    },
    adminOnly: true,
    async handler(a, backend) {
      // Both: data that also ends after `seconds`, whichever comes first.
      if (a.seconds === undefined && a.bytes === undefined)
        throw new InvalidArgumentError('seconds', 'seconds, bytes, or both is required');
      const outcome = await backend.grant({
        mac: a.mac,
        ...(a.seconds !== undefined && { seconds: a.seconds }),
        ...(a.bytes !== undefined && { bytes: a.bytes }),
        ...(a.ip !== undefined && { ip: a.ip }),
        ...(a.user !== undefined && { user: a.user }),
        ...(a.plan !== undefined && { plan: a.plan }),
        ...(a.idempotency_key !== undefined && { idempotencyKey: a.idempotency_key }),
        ...(a.devices !== undefined && { devices: a.devices > 16n ? 17 : Number(a.devices) }),
      });
      return { session: sessionView(outcome.session, backend.now()), topped_up: outcome.toppedUp, gate: outcome.gate };
    },
  }),
  extend: method({
    // The counter's extension: adds time or data to a live session, no more. Unlike `grant` it never starts a
    // session and unlike `change` it never lowers a limit or changes a speed tier, so a staff login may have it.
    args: { mac, seconds: { kind: 'count' }, bytes: { kind: 'count' } },
    adminOnly: true,
    async handler(a, backend) {
      if ((a.seconds === undefined) === (a.bytes === undefined))
        throw new InvalidArgumentError('seconds', 'seconds or bytes (one of them) is required');
      const metric = a.seconds !== undefined ? 'seconds' : 'bytes';
      const adds = a.seconds ?? a.bytes!;
      const live = backend.session({ mac: a.mac });
      // Checked before anything is added; no live session or another metric: the grant below refuses it.
      if (live !== undefined && isLive(live) && live.metric === metric) {
        const cap = extendCap(live, backend.pricing());
        if (cap === null || adds > cap.max)
          throw new SluiceError(
            'ERR_EXTEND_TOO_LARGE',
            cap === null
              ? `no ${metric} plan bounds an extend of this session`
              : `an extend adds at most ${cap.max} ${metric} (plan ${cap.plan}: max_steps × step_size)`,
          );
      }
      const outcome = await backend.grant({
        mac: a.mac,
        ...(a.seconds !== undefined && { seconds: a.seconds }),
        ...(a.bytes !== undefined && { bytes: a.bytes }),
        liveOnly: true,
      });
      return { session: { ...sessionView(outcome.session, backend.now()), ...gateField(outcome.session, backend) } };
    },
  }),
  change: method({
    args: {
      mac: { kind: 'mac' },
      id: { kind: 'string', maxLength: 64 },
      seconds: { kind: 'count' },
      bytes: { kind: 'count' },
      rate_down: { kind: 'string', maxLength: 32 },
      rate_up: { kind: 'string', maxLength: 32 },
    },
    adminOnly: true,
    async handler(a, backend, call) {
      if (a.mac === undefined && a.id === undefined) throw new InvalidArgumentError('mac', 'mac or id is required');
      // `none` lifts the tier in that direction (null); anything else reads like the config's rates.
      const rate = (name: 'rate_down' | 'rate_up', text: string | undefined): number | null | undefined => {
        if (text === undefined) return undefined;
        if (text.trim().toLowerCase() === 'none') return null;
        const p = parseRate(text);
        if (!p.ok) throw new InvalidArgumentError(name, `${p.reason}, or none to lift the limit`);
        return p.bps;
      };
      const down = rate('rate_down', a.rate_down);
      const up = rate('rate_up', a.rate_up);
      const hasRates = down !== undefined || up !== undefined;
      const hasLimits = a.seconds !== undefined || a.bytes !== undefined;
      if (!hasLimits && !hasRates)
        throw new InvalidArgumentError('seconds', 'seconds, bytes, rate_down or rate_up is required');
      if (hasRates && !backend.changeRates)
        throw new InvalidArgumentError('rate_down', 'speed tiers are not available');
      const query = { ...(a.mac !== undefined && { mac: a.mac }), ...(a.id !== undefined && { id: a.id }) };
      let session = backend.session(query);
      if (session === undefined || !isLive(session) || (a.mac !== undefined && session.mac !== a.mac)) {
        throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${a.id ?? a.mac}`);
      }
      const limits = {
        ...(a.seconds !== undefined && { seconds: a.seconds }),
        ...(a.bytes !== undefined && { bytes: a.bytes }),
      };
      // Nothing half-applied: the limits are checked before anything changes (limitsAfter throws what setLimits
      // would), the rates (which the kernel may still refuse) go first, the limits (which can end the session) last.
      if (hasLimits) limitsAfter(session, limits);
      if (hasRates) {
        // The direction not named keeps the session's own rate (none: not limited).
        const now = session.rates;
        session = await backend.changeRates!(
          session.mac,
          {
            downBps: down !== undefined ? down : (now?.downBps ?? null),
            upBps: up !== undefined ? up : (now?.upBps ?? null),
          },
          call.origin,
        );
      }
      if (hasLimits) session = await backend.change({ id: session.id }, limits);
      return { session: { ...sessionView(session, backend.now()), ...gateField(session, backend) } };
    },
  }),
  move: method({
    args: { mac: { kind: 'mac' }, id: { kind: 'string', maxLength: 64 }, to: { kind: 'mac', required: true } },
    adminOnly: true,
    async handler(a, backend) {
      if (a.mac === undefined && a.id === undefined) throw new InvalidArgumentError('mac', 'mac or id is required');
      if (!backend.move) throw new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'moving sessions is not available here');
      const { session, from, gate } = await backend.move(
        { ...(a.mac !== undefined && { mac: a.mac }), ...(a.id !== undefined && { id: a.id }) },
        a.to,
      );
      return { session: sessionView(session, backend.now()), from, gate };
    },
  }),
  logout: method({
    args: { user: { kind: 'string', required: true, maxLength: 253 } },
    adminOnly: true,
    async handler(a, backend) {
      const { sessions: ended, gate } = await backend.logout(a.user);
      const now = backend.now();
      return { ended: ended.length, sessions: ended.map((s) => sessionView(s, now)), gate };
    },
  }),
  remove_device: method({
    args: { mac },
    adminOnly: true,
    async handler(a, backend) {
      if (!backend.removeDevice)
        throw new SluiceError('ERR_DEVICE_NOT_MEMBER', 'this backend has no sessions of several devices');
      const { session, gate } = await backend.removeDevice(a.mac);
      return { session: sessionView(session, backend.now()), gate };
    },
  }),
  pricing: method({
    args: {},
    adminOnly: false,
    handler(_a, backend) {
      const plans = backend.pricing();
      return { default: plans[0]?.id ?? null, plans: plans.map(planView) };
    },
  }),
  sales: method({
    args: { since: { kind: 'count' }, until: { kind: 'count' } },
    adminOnly: false,
    handler(a, backend) {
      const until = a.until === undefined ? backend.now() : Number(a.until);
      return toBlobmsgTable(salesReply(backend.salesBook(), Number(a.since ?? 0n), until));
    },
  }),
  stats: method({
    args: {},
    adminOnly: false,
    handler(_a, backend) {
      return backend.stats();
    },
  }),
  reload: method({
    args: {},
    adminOnly: true,
    async handler(_a, backend) {
      return { reloaded: true, ...(await backend.reload()) };
    },
  }),
};

/** The `sluice` object's table: its methods by name. */
export type MethodTable = Readonly<Record<string, ApiMethod>>;

/**
 * The table for a plugin list's registrations: the object's own methods, with the plugins' after `sessions` (where
 * docs/ubus-api.md lists them). A plugin's method cannot take the name of one of the object's own.
 */
export function methodTable(registered: readonly RegisteredPlugin[]): MethodTable {
  const own = [...Object.entries(OWN_METHODS), ...Object.entries(VENUE_METHODS as Record<string, ApiMethod>)];
  const at = own.findIndex(([name]) => name === 'sessions') + 1;
  const brought = pluginMethods(registered);
  for (const name of Object.keys(brought)) {
    if (name in OWN_METHODS)
      throw new Error(`ubus method ${name} of a payment plugin has the name of one of the sluice object's own`);
  }
  return Object.fromEntries([...own.slice(0, at), ...Object.entries(brought), ...own.slice(at)]);
}

/** The table of payments/plugins.ts's list (what the daemon serves unless it is started with another list). */
export const METHODS: MethodTable = methodTable(REGISTERED);

export { checkArgs, signatureOf };
