/**
 * The `sluice` ubus object as a table: each method declares its arguments (checked once, before the handler) and
 * whether it is admin-only. Admin methods are separate methods, not flags on shared ones, so an rpcd/ubusd ACL can
 * give a portal `purchase`, `quote` and `session` without `terminate` or `grant`.
 */
import { checkArgs, signatureOf, InvalidArgumentError, type ArgSpecs, type CheckedArgs } from './args.ts';
import { SluiceError } from '../errors.ts';
import { planView, quoteView, sessionView } from './view.ts';
import type { SluiceBackend } from './backend.ts';
import type { BlobmsgTable } from '../ubus/codec/index.ts';
import { SESSION_STATES, TERMINATE_CAUSES, isLive, type EndCause, type Session, type SessionState } from '../sessions/index.ts';

export interface ApiMethod {
  args: ArgSpecs;
  adminOnly: boolean;
  handler(args: CheckedArgs, backend: SluiceBackend): Promise<BlobmsgTable> | BlobmsgTable;
}

const mac = { kind: 'mac', required: true } as const;

/** `sessions` pages: a reply of the default size always fits a ubus message (1 MiB), and so does the largest. */
export const SESSIONS_DEFAULT_LIMIT = 100;
export const SESSIONS_MAX_LIMIT = 500;
/** `state` filters beyond the four states: LIVE = PENDING or ACTIVE, ENDED = EXPIRED or TERMINATED. */
const SESSION_GROUPS = ['LIVE', 'ENDED'] as const;
type SessionGroup = (typeof SESSION_GROUPS)[number];
const isGroup = (s: string): s is SessionGroup => (SESSION_GROUPS as readonly string[]).includes(s);
const optionalText = { kind: 'string', maxLength: 253 } as const;

/** `gate` of a live session (open / pending) in `session` and `sessions`; ended sessions have none. */
function gateField(session: Session, backend: SluiceBackend): { gate?: 'open' | 'pending' } {
  return isLive(session) && backend.gateOf ? { gate: backend.gateOf(session.mac) } : {};
}

const PURCHASE_ARGS: ArgSpecs = {
  mac,
  ip: optionalText,
  user: optionalText,
  plan: { kind: 'string', maxLength: 64 },
  amount: { kind: 'amount' },
  steps: { kind: 'count' },
  payment: { kind: 'table', required: true },
};

export const METHODS: Readonly<Record<string, ApiMethod>> = {
  purchase: {
    args: PURCHASE_ARGS,
    adminOnly: false,
    async handler(a, backend) {
      const outcome = await backend.purchase({
        mac: a.mac as string,
        ...(a.ip !== undefined && { ip: a.ip as string }),
        ...(a.user !== undefined && { user: a.user as string }),
        ...(a.plan !== undefined && { plan: a.plan as string }),
        ...(a.amount !== undefined && { amount: a.amount as bigint }),
        ...(a.steps !== undefined && { steps: a.steps as bigint }),
        payment: a.payment as BlobmsgTable,
      });
      return {
        session: sessionView(outcome.session, backend.now()),
        topped_up: outcome.toppedUp,
        gate: outcome.gate,
        ...(outcome.quote && { quote: quoteView(outcome.quote) }),
      };
    },
  },
  quote: {
    args: { plan: { kind: 'string', maxLength: 64 }, amount: { kind: 'amount' }, steps: { kind: 'count' } },
    adminOnly: false,
    handler(a, backend) {
      const quote = backend.quote({
        ...(a.plan !== undefined && { plan: a.plan as string }),
        ...(a.amount !== undefined && { amount: a.amount as bigint }),
        ...(a.steps !== undefined && { steps: a.steps as bigint }),
      });
      return { quote: quoteView(quote) };
    },
  },
  session: {
    args: { mac: { kind: 'mac' }, id: { kind: 'string', maxLength: 64 } },
    adminOnly: false,
    handler(a, backend) {
      if (a.mac === undefined && a.id === undefined) throw new InvalidArgumentError('mac', 'mac or id is required');
      const session = backend.session({
        ...(a.mac !== undefined && { mac: a.mac as string }),
        ...(a.id !== undefined && { id: a.id as string }),
      });
      if (!session) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no session for ${(a.mac ?? a.id) as string}`);
      const escrow = backend.escrowOf?.(session) ?? null;
      return { session: { ...sessionView(session, backend.now()), ...gateField(session, backend), ...(escrow && { escrow }) } };
    },
  },
  sessions: {
    args: {
      state: { kind: 'string', oneOf: [...SESSION_STATES, ...SESSION_GROUPS] }, user: optionalText, mac: { kind: 'mac' },
      offset: { kind: 'count' }, limit: { kind: 'count' },
    },
    adminOnly: false,
    handler(a, backend) {
      const now = backend.now();
      const state = a.state as SessionState | SessionGroup | undefined;
      const offset = Number((a.offset as bigint | undefined) ?? 0n);
      const requested = a.limit as bigint | undefined;
      if (requested !== undefined && (requested < 1n || requested > BigInt(SESSIONS_MAX_LIMIT))) {
        throw new InvalidArgumentError('limit', `must be between 1 and ${SESSIONS_MAX_LIMIT}`);
      }
      const limit = requested === undefined ? SESSIONS_DEFAULT_LIMIT : Number(requested);
      let list = backend.sessions({
        ...(state !== undefined && !isGroup(state) && { state }),
        ...(a.user !== undefined && { user: a.user as string }),
        ...(a.mac !== undefined && { mac: a.mac as string }),
      });
      if (state !== undefined && isGroup(state)) list = list.filter((s) => (state === 'LIVE') === isLive(s));
      const page = list.slice(offset, offset + limit);
      return {
        sessions: page.map((s) => ({ ...sessionView(s, now), ...gateField(s, backend) })),
        total: list.length, offset, limit, more: offset + page.length < list.length,
      };
    },
  },
  receipt: {
    args: {
      mac: { kind: 'mac' }, session_id: { kind: 'string', maxLength: 66 }, cumulative_units: { kind: 'count', required: true },
      nonce: { kind: 'count' }, signature: { kind: 'string', maxLength: 132, required: true },
    },
    adminOnly: false,
    async handler(a, backend) {
      if (a.mac === undefined && a.session_id === undefined) throw new InvalidArgumentError('mac', 'mac or session_id is required');
      if (!backend.receipt) throw new SluiceError('ERR_RECEIPT_SESSION', 'escrow sessions are not enabled');
      const r = await backend.receipt({
        ...(a.mac !== undefined && { mac: a.mac }), ...(a.session_id !== undefined && { session_id: a.session_id }),
        cumulative_units: String(a.cumulative_units), ...(a.nonce !== undefined && { nonce: String(a.nonce) }), signature: a.signature,
      });
      return { session_id: r.sessionId, cumulative_units: r.cumulativeUnits.toString(), advanced: r.advanced };
    },
  },
  terminate: {
    args: { mac, cause: { kind: 'string', oneOf: TERMINATE_CAUSES } },
    adminOnly: true,
    async handler(a, backend) {
      const { session, gate } = await backend.terminate(a.mac as string, (a.cause as EndCause) ?? 'admin');
      return { session: sessionView(session, backend.now()), gate };
    },
  },
  grant: {
    args: { mac, seconds: { kind: 'count' }, bytes: { kind: 'count' }, ip: optionalText, user: optionalText, idempotency_key: { kind: 'string', maxLength: 200 } },
    adminOnly: true,
    async handler(a, backend) {
      if ((a.seconds === undefined) === (a.bytes === undefined))
        throw new InvalidArgumentError('seconds', 'exactly one of seconds or bytes is required');
      const outcome = await backend.grant({
        mac: a.mac as string,
        ...(a.seconds !== undefined && { seconds: a.seconds as bigint }),
        ...(a.bytes !== undefined && { bytes: a.bytes as bigint }),
        ...(a.ip !== undefined && { ip: a.ip as string }),
        ...(a.user !== undefined && { user: a.user as string }),
        ...(a.idempotency_key !== undefined && { idempotencyKey: a.idempotency_key as string }),
      });
      return { session: sessionView(outcome.session, backend.now()), topped_up: outcome.toppedUp, gate: outcome.gate };
    },
  },
  logout: {
    args: { user: { kind: 'string', required: true, maxLength: 253 } },
    adminOnly: true,
    async handler(a, backend) {
      const { sessions: ended, gate } = await backend.logout(a.user as string);
      const now = backend.now();
      return { ended: ended.length, sessions: ended.map((s) => sessionView(s, now)), gate };
    },
  },
  pricing: {
    args: {},
    adminOnly: false,
    handler(_a, backend) {
      const plans = backend.pricing();
      return { default: plans[0]?.id ?? null, plans: plans.map(planView) };
    },
  },
  stats: {
    args: {},
    adminOnly: false,
    handler(_a, backend) {
      return backend.stats();
    },
  },
  reload: {
    args: {},
    adminOnly: true,
    async handler(_a, backend) {
      return { reloaded: true, ...(await backend.reload()) };
    },
  },
};

export { checkArgs, signatureOf };
