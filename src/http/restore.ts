/**
 * A returning customer's session back on a new MAC (phones rotate private addresses per network and over time):
 *   POST /restore/challenge {payer}       → {nonce, message, expires_at}: a message for the wallet to sign, bound to
 *                                           the requesting client's MAC and IP as the portal lists them, single use
 *   POST /restore {nonce, signature}      → {session, from, gate}: the EIP-191 signature of that message by `payer`
 *                                           (low-s), for a live session that payer paid for: the session moves here
 * The payer is the identity: whoever holds the paying wallet's key may move the session it paid for, and no one else.
 * A method without a wallet restores through its own route (LanRequest.moveHere: a voucher typed again). The challenge
 * answers the same for every wallet (a LAN host must not learn which wallets have or had a session here); only what
 * concerns the asking device (its own live session) is refused before the signature. Whether the wallet paid for a
 * live session is told after it (ERR_RESTORE_NO_SESSION, ERR_RESTORE_SESSION_ENDED); nothing moves unless every check
 * passed, and the move itself is SessionManager.move (on flash first).
 */
import { randomBytes } from 'node:crypto';
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { SluiceBackend } from '../api/index.ts';
import { isLive, type Session } from '../sessions/index.ts';
import { recoverPersonalSigner } from '../x402/index.ts';

/** How long a challenge may be signed: enough to open a wallet app and confirm, short enough to be useless later. */
export const CHALLENGE_TTL_MS = 5 * 60_000;
/** Challenges kept at once (one per MAC; a flood of MACs behind one IP is bounded by the rate limit and this). */
export const MAX_CHALLENGES = 1024;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

interface Challenge {
  nonce: string;
  mac: string;
  ip: string;
  payer: string;
  expiresAt: number;
}

export interface RestoreDeskOptions {
  backend: Pick<SluiceBackend, 'now' | 'sessions' | 'session' | 'move'>;
  /** The wallet addresses (lowercase) that paid for a session: sessionPayers() in the endpoint. */
  payersOf(session: Session): string[];
  log?: Log;
}

/** The text the wallet shows and signs: what it does, for which device, once. */
export function challengeMessage(c: Omit<Challenge, 'expiresAt'> & { expiresAt: number }): string {
  return [
    'Move my WiFi session to this device.',
    '',
    `Wallet: ${c.payer}`,
    `Device: ${c.mac}`,
    `Address: ${c.ip}`,
    `Nonce: ${c.nonce}`,
    `Expires: ${new Date(c.expiresAt).toISOString()}`,
  ].join('\n');
}

export class RestoreDesk {
  private readonly challenges = new Map<string, Challenge>();
  private readonly byMac = new Map<string, string>();

  constructor(private readonly options: RestoreDeskOptions) {}

  /** A challenge for `mac` at `ip` to be signed by `payer`; the same answer whatever the wallet. */
  challenge(
    body: Record<string, unknown>,
    mac: string,
    ip: string,
  ): { nonce: string; message: string; expires_at: number } {
    const payer = body.payer;
    if (typeof payer !== 'string' || !ADDRESS.test(payer))
      throw new SluiceError('ERR_RESTORE_INVALID', 'payer must be a 0x address');
    const wallet = payer.toLowerCase();
    // Nothing about the wallet is told before its signature: any LAN host may ask a challenge for any address, so
    // whether it paid here (or its session ended) is said by POST /restore only, to the key's holder. What is refused
    // here is the same for every wallet: this device has a live session of its own.
    const here = this.options.backend.session({ mac });
    if (here && isLive(here))
      throw new SluiceError('ERR_SESSION_MOVE_TARGET', `${mac} has a live session of its own`, { details: { mac } });
    const now = this.options.backend.now();
    this.prune(now);
    const previous = this.byMac.get(mac);
    if (previous !== undefined) this.challenges.delete(previous);
    const c: Challenge = {
      nonce: randomBytes(16).toString('hex'),
      mac,
      ip,
      payer: wallet,
      expiresAt: now + CHALLENGE_TTL_MS,
    };
    this.challenges.set(c.nonce, c);
    this.byMac.set(mac, c.nonce);
    return { nonce: c.nonce, message: challengeMessage(c), expires_at: c.expiresAt };
  }

  /** Checks the signed challenge, then moves the payer's live session to `mac`. The challenge is spent either way. */
  async restore(
    body: Record<string, unknown>,
    mac: string,
    ip: string,
  ): Promise<{ session: Session; from: string; gate: string }> {
    const { nonce, signature } = body;
    if (
      typeof nonce !== 'string' ||
      !/^[0-9a-f]{32}$/.test(nonce) ||
      typeof signature !== 'string' ||
      signature.length > 200
    ) {
      throw new SluiceError('ERR_RESTORE_INVALID', 'the body must be {nonce, signature}');
    }
    const c = this.challenges.get(nonce);
    if (!c) throw new SluiceError('ERR_RESTORE_CHALLENGE', 'unknown or already used challenge: ask for a new one');
    // Single use, whatever follows: a failed try cannot be repeated against the same message.
    this.challenges.delete(nonce);
    if (this.byMac.get(c.mac) === nonce) this.byMac.delete(c.mac);
    if (c.mac !== mac || c.ip !== ip)
      throw new SluiceError('ERR_RESTORE_CHALLENGE', 'this challenge was issued to another device');
    if (this.options.backend.now() > c.expiresAt)
      throw new SluiceError('ERR_RESTORE_EXPIRED', 'the challenge expired: ask for a new one');
    const signer = await recoverPersonalSigner(challengeMessage(c), signature);
    if (signer !== c.payer) {
      throw new SluiceError(
        'ERR_RESTORE_SIGNER',
        "the signature is not the paying wallet's (or not a valid low-s signature)",
        { details: { signer } },
      );
    }
    const live = this.liveSessionOf(c.payer, mac);
    return this.moveHere(live, mac);
  }

  /** Moves a live session to `mac` (a restore's last step; a method's route's move too: LanRequest.moveHere). */
  async moveHere(live: Session, mac: string): Promise<{ session: Session; from: string; gate: string }> {
    if (live.mac === mac) return { session: live, from: mac, gate: 'already-open' };
    if (!this.options.backend.move)
      throw new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'moving sessions is not available here');
    const moved = await this.options.backend.move({ id: live.id }, mac);
    this.options.log?.info('session restored on a new device', { id: live.id, from: moved.from, mac });
    return moved;
  }

  /** The payer's newest live session, unless `mac` has one of its own. */
  private liveSessionOf(payer: string, mac: string): Session {
    const paid = this.options.backend.sessions({}).filter((s) => this.options.payersOf(s).includes(payer));
    const live = newest(paid.filter(isLive));
    if (!live) {
      if (paid.length > 0)
        throw new SluiceError('ERR_RESTORE_SESSION_ENDED', 'the session this wallet paid for has ended');
      throw new SluiceError('ERR_RESTORE_NO_SESSION', 'this wallet paid for no session here');
    }
    const here = this.options.backend.session({ mac });
    if (here && isLive(here) && here.id !== live.id) {
      throw new SluiceError('ERR_SESSION_MOVE_TARGET', `${mac} has a live session of its own`, { details: { mac } });
    }
    return live;
  }

  private prune(now: number): void {
    for (const [nonce, c] of this.challenges) {
      if (c.expiresAt >= now && this.challenges.size < MAX_CHALLENGES) break;
      this.challenges.delete(nonce);
      if (this.byMac.get(c.mac) === nonce) this.byMac.delete(c.mac);
    }
  }
}

function newest(sessions: Session[]): Session | undefined {
  return sessions.sort((a, b) => b.createdAt - a.createdAt)[0];
}
