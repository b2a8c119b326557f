/**
 * What a kernel quota table made again (deleted behind sluice: kernel-quota.ts rebuild) needs from the kernel's
 * counters (their own table, untouched) to set each client's quota to what it has left now, not to its session's bytes
 * left as of the meter's last reading: the bytes that passed since that reading would pass a second time.
 *
 * Two steps, around the new table. Before it, one read of the counters: each quota is made with its session's bytes
 * left less what its counters counted past the meter's billed reading. After it, one read of both tables in one nft
 * run (`list ruleset netdev`: the two counts of one moment), and each quota lowered in place to its count so far plus
 * what is left by the counters then: the bytes that passed between the first read and the new table (the new quotas
 * did not count them) are taken off too.
 */
import { parseCounterTable, readCounterTable } from './kernel-counters.ts';
import type { KernelReading } from './counter-dump.ts';
import { limitScript, parseQuotaList, quotaName, type KernelQuotaEntry } from './kernel-quota-nft.ts';
import type { NftRun } from './nft-run.ts';

/**
 * The meter's billed readings, taken when called (null: it has none of the kernel's counters), as what each client's
 * counters counted past them: MAC → bytes (absent: no counters read for it). The caller reads the sessions' bytes left
 * in the same moment: they pair.
 */
export type SinceBilled = () => ((readings: readonly KernelReading[]) => ReadonlyMap<string, number>) | null;

/** What each client's counters counted past the billed readings, by one read of them (throws when nft does). */
export async function countedNow(
  run: NftRun,
  since: (readings: readonly KernelReading[]) => ReadonlyMap<string, number>,
): Promise<ReadonlyMap<string, number>> {
  return since((await readCounterTable(run)).readings);
}

/**
 * The quotas lowered in place, by one read of both tables and one change: each client's limit its quota's count so far
 * plus its session's bytes left (`left`) less what its counters counted past the billed reading. Clients whose quota
 * or counters the read does not show, or whose limit is already as low, are left. Returns those lowered; throws when
 * nft does.
 */
export async function catchUp(
  run: NftRun,
  since: (readings: readonly KernelReading[]) => ReadonlyMap<string, number>,
  left: ReadonlyMap<string, number>,
): Promise<KernelQuotaEntry[]> {
  const dump = await run(['-j', 'list', 'ruleset', 'netdev'], '');
  const quotas = parseQuotaList(dump);
  const counted = since(parseCounterTable(dump).readings);
  const lower: KernelQuotaEntry[] = [];
  for (const [mac, bytes] of left) {
    const q = quotas.get(quotaName(mac));
    const c = counted.get(mac);
    if (q === undefined || c === undefined) continue;
    const limitBytes = q.usedBytes + Math.max(0, bytes - c);
    if (limitBytes < q.limitBytes) lower.push({ mac, limitBytes });
  }
  if (lower.length > 0) await run(['-f', '-'], lower.map(limitScript).join(''));
  return lower;
}
