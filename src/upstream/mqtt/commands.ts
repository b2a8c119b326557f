/**
 * The signed command channel (`<prefix>/<router>/cmd`), pure apart from the clock. A command is
 *
 *   {"command": "<JSON text of {cmd, args, ts, nonce, id?}>", "sig": "<hex HMAC-SHA256(command_secret, that text)>"}
 *
 * in JSON or MessagePack. The MAC is over the exact text, so no canonical form is needed. Refused: a bad or missing
 * signature, a timestamp (ms) further than command_window from the router's clock, a nonce seen within the window
 * (replay), an unknown command. The nonces seen are returned for the caller to persist, so a replay after a restart
 * is refused too.
 */
import { timingSafeEqual } from 'node:crypto';
import { SluiceError, type ErrorCode } from '../../errors.ts';
import type { SeenNonces } from '../../storage/index.ts';
import { systemClock, type Clock } from '../../time.ts';
import { signCommand } from './command-mac.ts';
import { decode } from './messages.ts';

/** Commands the channel accepts: the admin ubus methods of the same names (same arguments). */
export const COMMANDS = [
  'terminate',
  'grant',
  'change',
  'logout',
  // Roaming within a venue: the fleet's lease service's answers (docs/roaming.md).
  'venue_answer',
  'venue_release',
  'venue_open',
  'venue_charge',
] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface Command {
  cmd: CommandName;
  args: Record<string, unknown>;
  ts: number;
  nonce: string;
  /** The sender's request id, echoed in the reply. */
  id: string | null;
}

export class CommandError extends SluiceError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly nonce: string | null = null,
    readonly id: string | null = null,
  ) {
    super(code, message);
    this.name = 'CommandError';
  }
}

export class CommandVerifier {
  /** nonce → ts, kept while within the window. */
  private readonly seen = new Map<string, number>();
  /** Commands signed at or before this ts are refused: the nonces seen up to then were lost (refuseSignedUpToNow). */
  private floor = -Infinity;

  constructor(
    private secret: string,
    private windowMs: number,
    private readonly clock: Clock = systemClock,
  ) {}

  configure(secret: string, windowMs: number): void {
    this.secret = secret;
    this.windowMs = windowMs;
  }

  /** Nonces to keep across a restart (those still within the window). */
  nonces(): Array<[string, number]> {
    this.prune();
    return [...this.seen];
  }

  /**
   * What to keep across a restart: the nonces within the window, and the floor of refuseSignedUpToNow while it still
   * refuses something the window would not (kept, a restart after the next save still refuses what the lost file held).
   */
  saved(): SeenNonces {
    const nonces = this.nonces();
    return { nonces, refusedUpTo: this.floor >= this.clock.now() - this.windowMs ? this.floor : null };
  }

  /** A floor saved by an earlier run (saved()): commands signed at or before `ts` stay refused. */
  refuseSignedUpTo(ts: number): void {
    this.floor = Math.max(this.floor, ts);
  }

  /**
   * The record of used nonces was lost (a damaged file): any command signed up to now may have run already, so those
   * are refused; a command signed later cannot have been seen before. Once now is older than the window, the window
   * alone refuses them. Returns the ts refused up to.
   */
  refuseSignedUpToNow(): number {
    this.floor = Math.max(this.floor, this.clock.now());
    return this.floor;
  }

  restore(nonces: ReadonlyArray<readonly [string, number]>): void {
    for (const [n, ts] of nonces) if (typeof n === 'string' && typeof ts === 'number') this.seen.set(n, ts);
    this.prune();
  }

  private prune(): void {
    const oldest = this.clock.now() - this.windowMs;
    for (const [n, ts] of this.seen) if (ts < oldest) this.seen.delete(n);
  }

  /** Verifies and records one command; throws CommandError with a stable code. */
  verify(payload: Uint8Array): Command {
    let outer: unknown;
    try {
      outer = decode(payload);
    } catch {
      throw new CommandError('ERR_MQTT_COMMAND_INVALID', 'a command must be a JSON or MessagePack map {command, sig}');
    }
    const o = outer as { command?: unknown; sig?: unknown } | null;
    if (o === null || typeof o !== 'object' || typeof o.command !== 'string' || typeof o.sig !== 'string') {
      throw new CommandError('ERR_MQTT_COMMAND_INVALID', 'a command must be a map {command: string, sig: string}');
    }
    const expected = Buffer.from(signCommand(this.secret, o.command), 'hex');
    const given = /^[0-9a-fA-F]{64}$/.test(o.sig) ? Buffer.from(o.sig, 'hex') : Buffer.alloc(0);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new CommandError('ERR_MQTT_COMMAND_SIGNATURE', 'bad command signature');
    }
    let inner: unknown;
    try {
      inner = JSON.parse(o.command);
    } catch {
      throw new CommandError('ERR_MQTT_COMMAND_INVALID', 'command is not JSON text');
    }
    const c = inner as Partial<Record<keyof Command, unknown>> | null;
    if (c === null || typeof c !== 'object')
      throw new CommandError('ERR_MQTT_COMMAND_INVALID', 'command must be a JSON object');
    const id = typeof c.id === 'string' && c.id.length <= 128 ? c.id : null;
    const nonce = typeof c.nonce === 'string' && /^[\x21-\x7e]{8,128}$/.test(c.nonce) ? c.nonce : null;
    if (nonce === null)
      throw new CommandError('ERR_MQTT_COMMAND_INVALID', 'nonce must be 8 to 128 printable characters', null, id);
    if (typeof c.ts !== 'number' || !Number.isFinite(c.ts)) {
      throw new CommandError('ERR_MQTT_COMMAND_INVALID', 'ts must be a number (ms since the epoch)', nonce, id);
    }
    const skew = Math.abs(this.clock.now() - c.ts);
    if (skew > this.windowMs) {
      throw new CommandError(
        'ERR_MQTT_COMMAND_EXPIRED',
        `ts is ${Math.round(skew / 1000)} s from the router's clock (window ${this.windowMs / 1000} s)`,
        nonce,
        id,
      );
    }
    this.prune();
    if (this.seen.has(nonce))
      throw new CommandError('ERR_MQTT_COMMAND_REPLAYED', 'nonce already used: replay refused', nonce, id);
    if (c.ts <= this.floor) {
      throw new CommandError(
        'ERR_MQTT_COMMAND_REPLAYED',
        'signed before the router lost its record of used nonces (a damaged nonces.json): it may have run ' +
          'already; send it again with a new ts and nonce',
        nonce,
        id,
      );
    }
    if (typeof c.cmd !== 'string' || !(COMMANDS as readonly string[]).includes(c.cmd)) {
      throw new CommandError('ERR_MQTT_COMMAND_UNKNOWN', `cmd must be one of ${COMMANDS.join(', ')}`, nonce, id);
    }
    const args = c.args === undefined ? {} : c.args;
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new CommandError('ERR_MQTT_COMMAND_INVALID', 'args must be an object', nonce, id);
    }
    // Recorded only once everything checked out: a malformed command does not burn its nonce.
    this.seen.set(nonce, c.ts);
    return { cmd: c.cmd as CommandName, args: args as Record<string, unknown>, ts: c.ts, nonce, id };
  }
}
