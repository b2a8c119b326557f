/**
 * Operator actions: what the routers' signed command channel accepts (docs/mqtt.md, "The command channel"), and only
 * `terminate` and `grant`, with arguments checked here as the router's ubus method checks them. Each command is signed
 * with the router's command key (mqtt.command_secret) exactly as the router's verifier expects, written to the audit
 * table before it is published (who, when, what), and completed there with the router's reply, or left "no answer".
 */
import { randomBytes } from 'node:crypto';
import { Unpackr } from 'msgpackr';
import type { Sql } from '../db/index.ts';
import { signCommand } from '../../upstream/index.ts';
import { InputError } from './auth.ts';

export type ActionName = 'terminate' | 'grant';

/** Publishes to the broker and hands back replies; mqtt-bus.ts over mqtt.js, or a test's. */
export interface CommandBus {
  publish(topic: string, payload: Buffer): Promise<void>;
  /** Called with every message on `<prefix>/+/cmd/reply`. */
  onReply(handler: (topic: string, payload: Buffer) => void): void;
}

export interface ActionResult {
  requestId: string;
  /** null: no reply within the wait (the router may be offline; the command expires after its command_window). */
  ok: boolean | null;
  reply: Record<string, unknown> | null;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const MAX_GRANT_SECONDS = 366 * 86400;
const MAX_GRANT_BYTES = 2 ** 50;

/** The arguments of an action from a form's fields, checked; InputError says what is wrong. */
export function actionArgs(name: string, form: URLSearchParams): { name: ActionName; args: Record<string, unknown> } {
  const mac = (form.get('mac') ?? '').trim().toLowerCase();
  if (!MAC.test(mac))
    throw new InputError(`mac must be a MAC address like aa:bb:cc:dd:ee:ff (got ${JSON.stringify(mac)})`);
  if (name === 'terminate') return { name, args: { mac } };
  if (name !== 'grant') throw new InputError(`unknown action ${JSON.stringify(name)}: terminate or grant`);
  const amount = Number(form.get('amount'));
  const unit = form.get('unit');
  const factor =
    unit === 'minutes' ? 60 : unit === 'hours' ? 3600 : unit === 'MiB' ? 2 ** 20 : unit === 'GiB' ? 2 ** 30 : 0;
  if (factor === 0) throw new InputError('unit must be minutes, hours, MiB or GiB');
  if (!Number.isInteger(amount) || amount < 1) throw new InputError('amount must be a whole number of at least 1');
  const value = amount * factor;
  if (unit === 'minutes' || unit === 'hours') {
    if (value > MAX_GRANT_SECONDS) throw new InputError('a grant is at most 366 days');
    return { name, args: { mac, seconds: value } };
  }
  if (value > MAX_GRANT_BYTES) throw new InputError('a grant is at most 1 PiB');
  return { name, args: { mac, bytes: value } };
}

/** Per router, its command key: a file of `<router> <secret>` lines (`*` for every router), # comments. */
export function parseCommandKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)\s+(\S.*)$/.exec(line);
    if (m === null) throw new InputError(`command keys line ${i + 1}: expected "<router> <secret>"`);
    keys.set(m[1]!, m[2]!);
  });
  return keys;
}

export interface ActionsOptions {
  db: Sql;
  bus: CommandBus;
  /** The router's command key, or undefined: actions on it are refused. */
  keyOf: (router: string) => string | undefined;
  prefix: string;
  now: () => number;
  /** How long to wait for the router's reply (default 15 s). */
  replyWaitMs?: number;
}

export class Actions {
  private readonly waiting = new Map<string, { router: string; done: (reply: Record<string, unknown>) => void }>();

  constructor(private readonly o: ActionsOptions) {
    o.bus.onReply((topic, payload) => this.reply(topic, payload));
  }

  canAct(router: string): boolean {
    return this.o.keyOf(router) !== undefined;
  }

  private reply(topic: string, payload: Buffer): void {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      body = decodeMsgpack(payload);
    }
    const reply = body as Record<string, unknown> | null;
    const id = typeof reply?.['id'] === 'string' ? reply['id'] : null;
    const wait = id === null ? undefined : this.waiting.get(id);
    // Only the router the command went to can answer it.
    if (wait === undefined || topic !== `${this.o.prefix}/${wait.router}/cmd/reply`) return;
    this.waiting.delete(id!);
    wait.done(reply!);
  }

  /** Signs, audits, publishes, and waits for the reply (recorded in the audit as well). */
  async run(actor: string, router: string, name: ActionName, args: Record<string, unknown>): Promise<ActionResult> {
    const key = this.o.keyOf(router);
    if (key === undefined) throw new InputError(`no command key for router ${router}: actions on it are off`);
    const requestId = `fleet-${randomBytes(9).toString('hex')}`;
    const nonce = randomBytes(16).toString('hex');
    const ts = this.o.now();
    // A grant carries the request id as its idempotency key: sent twice, it grants once.
    const sent = name === 'grant' ? { ...args, idempotency_key: requestId } : args;
    const text = JSON.stringify({ cmd: name, args: sent, ts, nonce, id: requestId });
    const payload = Buffer.from(JSON.stringify({ command: text, sig: signCommand(key, text) }));
    // Durable before acting: the audit row exists before the command can reach the router.
    await this.o.db.query(
      `INSERT INTO dashboard_audit (at, actor, router, command, args, request_id, nonce)
       VALUES (to_timestamp($1 / 1000.0), $2, $3, $4, $5::jsonb, $6, $7)`,
      [ts, actor, router, name, JSON.stringify(sent), requestId, nonce],
    );
    const answered = new Promise<Record<string, unknown> | null>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        resolve(null);
      }, this.o.replyWaitMs ?? 15_000);
      this.waiting.set(requestId, {
        router,
        done: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
    try {
      await this.o.bus.publish(`${this.o.prefix}/${router}/cmd`, payload);
    } catch (err) {
      this.waiting.delete(requestId);
      throw err;
    }
    const reply = await answered;
    if (reply === null) return { requestId, ok: null, reply: null };
    const ok = reply['ok'] === true;
    await this.o.db.query(
      `UPDATE dashboard_audit SET ok = $2, answered_at = to_timestamp($3 / 1000.0), reply = $4::jsonb
       WHERE request_id = $1`,
      [requestId, ok, this.o.now(), JSON.stringify(reply)],
    );
    return { requestId, ok, reply };
  }
}

const unpackr = new Unpackr({ int64AsType: 'number', useRecords: false });
/** A router with mqtt.format msgpack replies in MessagePack. */
function decodeMsgpack(payload: Buffer): unknown {
  try {
    return unpackr.unpack(payload);
  } catch {
    return null;
  }
}
