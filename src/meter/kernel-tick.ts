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
 * A roster as the hot path reads it: each valid MAC's two parts and its state, in the roster's order (a MAC that is
 * not one is left out, as accountKernelReadings skips it). A thread builds it once per roster it is handed or scans,
 * not once a tick; its own arrays, so a roster changed later on the main thread does not change it.
 */
export class PreparedRoster {
  private constructor(
    readonly count: number,
    readonly hi: Uint16Array,
    readonly lo: Uint32Array,
    readonly state: Uint8Array,
  ) {}

  static of(roster: readonly RosterEntry[]): PreparedRoster {
    const hi = new Uint16Array(roster.length);
    const lo = new Uint32Array(roster.length);
    const state = new Uint8Array(roster.length);
    let n = 0;
    for (const [mac, code] of roster) {
      const parts = macToParts(mac);
      if (parts === undefined) continue;
      hi[n] = parts[0];
      lo[n] = parts[1];
      state[n] = code;
      n++;
    }
    return new PreparedRoster(n, hi, lo, state);
  }
}

/**
 * The same from the scanned dump (portal/nft-scan.ts) without an object per client: the hot path, every tick in the
 * worker. Also returns the indices of the dump's clients the roster does not hold (KernelUsageResult.unlisted).
 */
export function accountKernelDump(
  accountant: EpochAccountant,
  roster: PreparedRoster,
  dump: CounterDump,
): { deltas: TickDeltas; unlisted: number[] } {
  accountant.continueEpochsAcrossAbsence();
  const rostered = new Uint8Array(dump.count);
  const { hi, lo, state } = roster;
  for (let i = 0; i < roster.count; i++) {
    const k = dump.indexOf(hi[i]!, lo[i]!);
    if (k < 0) accountant.observe(hi[i]!, lo[i]!, 0, state[i]!, 0, 0);
    else {
      rostered[k] = 1;
      accountant.observe(hi[i]!, lo[i]!, dump.epoch[k]!, state[i]!, dump.downBytes[k]!, dump.upBytes[k]!);
    }
  }
  const unlisted: number[] = [];
  for (let k = 0; k < rostered.length; k++) if (rostered[k] === 0) unlisted.push(k);
  return { deltas: accountant.finish(), unlisted };
}
