/**
 * Whether each mint answered the last time sluice asked it (keysets at start and before a token, the custody pass),
 * for ubus `cashu_balance`: the café's staff see "the mint did not answer at …" on LuCI's page instead of only in the
 * log. Holds a time and the error's message (a mint URL and a network reason: never a proof, a secret or a token).
 */
import { toSluiceError } from '../../errors.ts';

/** Long enough for a network reason; a mint's error page is not copied whole into the reply. */
const MAX_ERROR = 200;

export interface MintAnswer {
  ok: boolean;
  at: number;
  error: string | null;
}

export class MintHealth {
  private readonly last = new Map<string, MintAnswer>();

  answered(mint: string, at: number): void {
    this.last.set(mint, { ok: true, at, error: null });
  }

  /** Returns `err`, for `throw health.failed(…)`. */
  failed<E>(mint: string, at: number, err: E): E {
    this.last.set(mint, { ok: false, at, error: toSluiceError(err).message.slice(0, MAX_ERROR) });
    return err;
  }

  /** cashu_balance's per-mint fields: reachable null and checked_at null when sluice has not asked the mint yet. */
  view(mint: string): { reachable: boolean | null; checked_at: number | null; last_error: string | null } {
    const a = this.last.get(mint);
    return { reachable: a ? a.ok : null, checked_at: a ? Math.floor(a.at / 1000) : null, last_error: a?.error ?? null };
  }
}
