/**
 * Keyset retirement (TollGate #417): a mint rotating its keys marks the old keyset inactive; its
 * proofs still spend as inputs until the keyset's `final_expiry`, after which the mint refuses them (cdk: 12003) and
 * the ecash is gone. So held proofs on a keyset the mint lists as inactive are swapped (NUT-03) onto its active keyset
 * as soon as the custody pass sees them, long before any expiry, with the receive swap's discipline: the take and
 * the swap's outputs (secrets, blinding factors) on flash before /v1/swap, the new proofs on flash before the take
 * ends; an unclear answer resolved from the inputs' state: unspent → given back (the next pass swaps them afresh),
 * spent → the identical swap again (NUT-19) or a restore of the outputs (NUT-09).
 */
import type { CustodyPort } from './payout.ts';
import type { SwapOut } from './outgoing.ts';
import { giveBack } from './payout.ts';
import {
  MAX_PROOFS,
  inputFee,
  makeOutputs,
  splitAmount,
  unblindAll,
  yOf,
  type StoredProof,
} from '../../cashu/index.ts';

/** Swaps one batch of a mint's held proofs off its inactive keysets; how many sat were moved (0: none to move). */
export async function retireKeysets(mint: string, port: CustodyPort): Promise<number> {
  const keysets = await port.keysets(mint);
  const active = keysets.find((k) => k.active && k.unit === 'sat');
  if (!active) return 0;
  const inactive = new Set(keysets.filter((k) => !k.active).map((k) => k.id));
  const batch = port.store
    .proofsOf(mint)
    .filter((p) => inactive.has(p.id))
    .slice(0, MAX_PROOFS);
  if (batch.length === 0) return 0;
  const total = batch.reduce((s, p) => s + p.amount, 0);
  const fee = Number(inputFee(batch, keysets));
  if (total <= fee) {
    port.log?.warn("cashu: ecash on a retired keyset is worth less than the swap's fee; left as it is", {
      mint,
      sat: total,
    });
    return 0;
  }
  const keys = await port.keysOf(mint, active.id);
  const outputs = makeOutputs(
    splitAmount(
      BigInt(total - fee),
      Object.keys(keys).map((a) => BigInt(a)),
    ),
    active.id,
  );
  const take = await port.store.take(mint, batch, 'keyset retired');
  const record: SwapOut = { kind: 'swap', take, mint, inputTotal: total, inputFee: fee, outputs, at: port.now() };
  try {
    await port.book.add(record);
  } catch (err) {
    await port.store.cancelTake(take);
    throw err;
  }
  const answer = await port.client(mint).swap(batch, outputs);
  if (answer.kind === 'ok') {
    await land(
      record,
      answer.value.map((s) => s.C_),
      port,
    );
    port.log?.info('cashu: ecash swapped off a retired keyset', { mint, sat: total, fee });
    return total;
  }
  await resolveSwap(record, port);
  return total;
}

async function land(record: SwapOut, signatures: readonly string[], port: CustodyPort): Promise<void> {
  const keys = await port.keysOf(record.mint, record.outputs[0]!.id);
  const proofs: StoredProof[] = unblindAll(record.outputs, signatures, keys);
  await port.store.finishTake(record.take, proofs);
  await port.book.end(record.take);
}

/** A retirement swap on flash to its end as far as the mint can tell now: 'done' or 'later'. */
export async function resolveSwap(record: SwapOut, port: CustodyPort): Promise<'done' | 'later'> {
  const inputs = port.store.takes().find((t) => t.id === record.take)?.proofs;
  if (!inputs) {
    await port.book.end(record.take);
    return 'done';
  }
  const client = port.client(record.mint);
  const states = await client.checkstate(inputs.map((p) => yOf(p.secret)));
  if (states.kind !== 'ok') return 'later';
  const values = [...states.value.values()];
  if (values.includes('PENDING')) return 'later';
  if (values.every((s) => s === 'UNSPENT')) {
    // The swap never applied: the proofs are held again, and the next pass swaps them with fresh outputs.
    return giveBack(
      record.take,
      record.mint,
      port,
      async () => {
        await port.book.end(record.take);
        return 'done' as const;
      },
      () => 'later' as const,
    );
  }
  const replay = await client.swap(inputs, record.outputs);
  if (replay.kind === 'ok') {
    await land(
      record,
      replay.value.map((s) => s.C_),
      port,
    );
    return 'done';
  }
  if (replay.kind !== 'refused') return 'later';
  const restored = await client.restore(record.outputs);
  if (restored.kind !== 'ok') return 'later';
  const sigs = record.outputs.map((o) => restored.value.get(o.B_.toLowerCase())?.C_);
  if (sigs.every((s) => s !== undefined)) {
    await land(record, sigs as string[], port);
    return 'done';
  }
  if (sigs.some((s) => s !== undefined)) return 'later';
  return giveBack(
    record.take,
    record.mint,
    port,
    async () => {
      await port.book.end(record.take);
      return 'done' as const;
    },
    () => 'later' as const,
  );
}
