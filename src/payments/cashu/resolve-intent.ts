/**
 * What the resolver does with an intent whose swap has no known outcome (docs/tollgate.md, "Custody and crash
 * table"): the mint's checkstate of the inputs decides. UNSPENT: the swap never happened, swap now. PENDING or no
 * answer: later. SPENT: by our swap whose answer was lost, or by the customer elsewhere first; the identical swap again
 * answers the former (NUT-19 cached), else a restore of the stored outputs (NUT-09) returns their signatures; nothing
 * restored means spent elsewhere: dropped, nothing owed. And how the mint's answers become the customer's errors.
 */
import { SluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { MintAnswer, MintClient } from '../../cashu/index.ts';
import type { SwapIntent } from './ledger-state.ts';
import type { CashuStore } from './store.ts';
import { yOf, type StoredProof } from '../../cashu/index.ts';

export type SwapOutcome =
  | { kind: 'landed'; proofs: StoredProof[] }
  | { kind: 'refused'; error: SluiceError }
  | { kind: 'unknown'; message: string };

export interface IntentPort {
  client: MintClient;
  /** One /v1/swap of the intent, landing or dropping it (cashu.ts). */
  swap(intent: SwapIntent): Promise<SwapOutcome>;
  /** The mint's signatures on the intent's outputs → proofs on flash. */
  land(intent: SwapIntent, signatures: readonly string[]): Promise<SwapOutcome>;
  store: CashuStore;
  log?: Log | undefined;
}

/** 'later': the mint answered, not yet (PENDING); 'unanswered': it did not answer (intent-looks.ts counts those). */
export async function resolveOpen(
  intent: SwapIntent,
  port: IntentPort,
): Promise<'landed' | 'dropped' | 'later' | 'unanswered'> {
  const client = port.client;
  const states = await client.checkstate(intent.inputs.map((p) => yOf(p.secret)));
  if (states.kind !== 'ok') return 'unanswered';
  const values = [...states.value.values()];
  if (values.includes('PENDING')) return 'later';
  if (values.every((s) => s === 'UNSPENT')) {
    const o = await port.swap(intent);
    return o.kind === 'landed' ? 'landed' : o.kind === 'refused' ? 'dropped' : 'unanswered';
  }
  // Spent: by our swap whose answer was lost, or by the customer elsewhere. The mint tells which.
  const replay = await client.swap(intent.inputs, intent.outputs);
  if (replay.kind === 'ok') {
    await port.land(
      intent,
      replay.value.map((s) => s.C_),
    );
    return 'landed';
  }
  if (replay.kind === 'unknown' || replay.kind === 'unsent') return 'unanswered';
  const restored = await client.restore(intent.outputs);
  if (restored.kind !== 'ok') return 'unanswered';
  const sigs = intent.outputs.map((o) => restored.value.get(o.B_.toLowerCase())?.C_);
  if (sigs.every((s) => s !== undefined)) {
    await port.land(intent, sigs as string[]);
    return 'landed';
  }
  if (sigs.every((s) => s === undefined)) {
    await port.store.dropIntent(intent.ref, 'spent elsewhere');
    port.log?.info('cashu: a token was spent elsewhere before its swap; nothing taken, nothing owed', {
      reference: intent.ref,
    });
    return 'dropped';
  }
  port.log?.warn("cashu: the mint restored only some of a swap's outputs; asking again later", {
    reference: intent.ref,
  });
  return 'later';
}

export function pending(): SluiceError {
  return new SluiceError(
    'ERR_CASHU_PENDING',
    'the mint has not answered yet: the payment is being completed, and its session shows when it lands (do ' +
      'not pay again)',
  );
}

export function unavailable(mint: string, answer: MintAnswer<unknown>): SluiceError {
  const why =
    answer.kind === 'refused' ? `${answer.code} ${answer.detail}` : answer.kind === 'ok' ? '' : answer.message;
  return new SluiceError(
    'ERR_CASHU_MINT_UNAVAILABLE',
    `the mint cannot be reached (${why}); nothing was taken`.slice(0, 300),
    { details: { mint } },
  );
}

/** The mint's refusal of a swap (nothing applied) → the customer's error. */
export function swapRefusal(mint: string, answer: Exclude<MintAnswer<unknown>, { kind: 'ok' }>): SluiceError {
  if (answer.kind !== 'refused' || answer.code === 429) return unavailable(mint, answer);
  if (answer.code === 11001)
    return new SluiceError('ERR_CASHU_TOKEN_SPENT', 'the mint says this token was already spent');
  if (answer.code === 11002)
    return new SluiceError('ERR_PAYMENT_IN_PROGRESS', 'the mint says this token is being spent elsewhere right now');
  if (answer.code === 12001 || answer.code === 12002 || answer.code === 12003) {
    return new SluiceError('ERR_CASHU_KEYSET_UNKNOWN', `the mint refused the token's keyset (${answer.code})`);
  }
  return new SluiceError(
    'ERR_CASHU_TOKEN_INVALID',
    `the mint refused the token (${answer.code} ${answer.detail})`.slice(0, 300),
  );
}
