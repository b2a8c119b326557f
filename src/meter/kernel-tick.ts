/**
 * A tick's accounting from the kernel's counters (portal/kernel-counters.ts) instead of a portal listing: the worker
 * reads one `nft -j list table` dump (portal/nft-scan.ts) and feeds each client the portal last listed to the same
 * epoch accountant, so the rules of epochs.ts hold unchanged (a counter lower than the base, or made again, is a new
 * epoch counted from 0; a client gone from the list departs). Pure: no I/O (runs in the usage worker).
 *
 * The token the table keeps for such a client is the counters' epoch (KernelReading.epoch), never the portal's token:
 * a re-auth by the portal does not reset the kernel's counters, so counting it as a new epoch would bill the whole
 * counter again. A listed client without counters is observed at 0 under token 0: its counters, once made, start a new
 * epoch whose every byte is new usage.
 */
import { macToParts, type CounterDump, type KernelReading } from '../portal/index.ts';
import type { EpochAccountant, TickDeltas } from './epochs.ts';

/** A client the portal listed last: its MAC and its state code (STATE_CODES). */
export type RosterEntry = readonly [mac: string, state: number];

/** Feeds `roster`'s clients with their kernel readings to `accountant` (already attached and begun) and finishes. */
export function accountKernelReadings(
  accountant: EpochAccountant,
  roster: readonly RosterEntry[],
  readings: readonly KernelReading[],
): TickDeltas {
  accountant.continueEpochsAcrossAbsence();
  const byMac = new Map<string, KernelReading>();
  for (const r of readings) byMac.set(r.mac, r);
  for (const [mac, state] of roster) {
    const parts = macToParts(mac);
    if (parts === undefined) continue;
    const r = byMac.get(mac);
    accountant.observe(parts[0], parts[1], r?.epoch ?? 0, state, r?.downBytes ?? 0, r?.upBytes ?? 0);
  }
  return accountant.finish();
}

/**
 * The same from the scanned dump (portal/nft-scan.ts) without an object per client: the hot path, every tick in the
 * worker. Also returns the indices of the dump's clients the roster does not hold (KernelUsageResult.unlisted).
 */
export function accountKernelDump(
  accountant: EpochAccountant,
  roster: readonly RosterEntry[],
  dump: CounterDump,
): { deltas: TickDeltas; unlisted: number[] } {
  accountant.continueEpochsAcrossAbsence();
  const rostered = new Uint8Array(dump.count);
  for (const [mac, state] of roster) {
    const parts = macToParts(mac);
    if (parts === undefined) continue;
    const k = dump.indexOf(parts[0], parts[1]);
    if (k < 0) accountant.observe(parts[0], parts[1], 0, state, 0, 0);
    else {
      rostered[k] = 1;
      accountant.observe(parts[0], parts[1], dump.epoch[k]!, state, dump.downBytes[k]!, dump.upBytes[k]!);
    }
  }
  const unlisted: number[] = [];
  for (let k = 0; k < rostered.length; k++) if (rostered[k] === 0) unlisted.push(k);
  return { deltas: accountant.finish(), unlisted };
}
