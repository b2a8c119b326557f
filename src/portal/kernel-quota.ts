import { toSluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import {
  installScript,
  KERNEL_QUOTA_TABLE,
  limitScript,
  parseQuotaList,
  parseTableState,
  quotaName,
  removeLines,
  removeScript,
  tableScript,
  type BrakedSession,
  type InheritedQuota,
  type KernelQuotaEntry,
  type TableState,
} from './kernel-quota-nft.ts';
import { ShareLedger, type QuotaCount } from './kernel-quota-share.ts';
import { catchUp, countedNow, type SinceBilled } from './kernel-quota-catch-up.ts';
import type { NftRun } from './nft-run.ts';

/**
 * The kernel's own byte quota per data session (nftables), a brake under the portal's gate: a polled cut closes the
 * gate a reading plus a deauth after the allotment ran out (openNDS 9: tens to hundreds of KiB at 8 Mbit/s), while a
 * kernel quota stops the client's packets at the byte, and keeps doing so while sluice is down.
 *
 * sluice's own table (`netdev sluice_quota`, not the portal's chains, so it works the same under openNDS 9 on iptables,
 * openNDS 10 on nftables and nodogsplash) holds one named quota per client, shared by both directions through two maps
 * keyed by its MAC: upload at the LAN device's ingress, download at its egress, both at priority -500, before a
 * flowtable's fast path (-100: an offloaded flow is braked too), sluice's counters (-450) and anything the portal
 * does, so what it drops nobody counts. Keyed by MAC, a client that takes another address is braked on it at once.
 * A quota counts from when it is installed: installed just before the auth (the portal's counters start at 0 there)
 * with the allotment left, the two count the same bytes.
 *
 * nft runs as a command (`main.nft`, argv), one batch (one kernel transaction) per change; changes are serialised.
 * A batch that fails (a table changed behind sluice's back) rebuilds the whole table from what sluice knows, with each
 * client's quota set to its session's bytes left.
 */

/**
 * After this many failed reads of the quotas in a row the kernel quota is turned off and its table deleted: a client
 * the kernel stopped must be seen stopped for its session to end, and a top-up or a refill needs the kernel's count,
 * so a brake that cannot be read would leave paid sessions hanging and paying clients blocked.
 */
export const READ_FAILURES_OFF = 3;

export interface KernelQuotaOptions {
  run: NftRun;
  /** The LAN device(s) the portal gates (`main.shape_device`, every one): the quota's hooks. */
  devices: readonly string[];
  log?: Log;
  /** A client's live data session (null: none): what a rebuild sets each quota to, and how much a top-up added. */
  session: (mac: string) => BrakedSession | null;
}

interface Installed extends KernelQuotaEntry {
  /** The session's allotment when the quota was last set or raised. */
  allotment: bigint | null;
  /** Carried over from an earlier run (start()): its count went on while sluice was down. */
  inherited?: true;
}

/**
 * sluice's side of the table: which clients have a quota, and every change to it. Never throws: the brake failing
 * leaves the polled cut in charge (logged); a failed change rebuilds the table.
 */
export class KernelQuota {
  readonly #run: NftRun;
  readonly #devices: readonly string[];
  readonly #log: Log;
  readonly #session: (mac: string) => BrakedSession | null;
  readonly #entries = new Map<string, Installed>();
  /** The shared purchases' billings against each count (the split's rule: kernel-quota-share.ts). */
  readonly #ledger = new ShareLedger();
  #queue: Promise<unknown> = Promise.resolve();
  #enabled = false;
  #failures = 0;
  /**
   * Reads of the quotas that failed in a row: at READ_FAILURES_OFF the brake is taken off (a stop nobody sees ends
   * nothing).
   */
  #readFailuresInRow = 0;
  #changes = 0;
  /** Turned off for good (off()): start() no longer turns it on. */
  #retired = false;
  #sinceBilled: SinceBilled | undefined;

  constructor(options: KernelQuotaOptions) {
    this.#run = options.run;
    this.#devices = options.devices;
    this.#log = options.log ?? silentLogger;
    this.#session = options.session;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * The meter's word on what passed since its last billed reading, which a rebuild takes off each session's bytes left
   * (set once the meter runs; without it a rebuild lets those bytes through again).
   */
  rebuildWith(sinceBilled: SinceBilled): void {
    this.#sinceBilled = sinceBilled;
  }

  /**
   * Creates the table with these clients' quotas, and carries over the quota an earlier run left for each client that
   * still has a live data session: the kernel kept counting (and braking) while sluice was down, so what it still lets
   * through is exact, where the journal's bytes left lag by what passed since the last checkpoint. Such a quota keeps
   * its count (the table is changed in place: the other clients' quotas go), its limit lowered where the journal's
   * bytes left are fewer; a top-up whose raise the crash lost leaves the kernel's the smaller, and the meter's refill
   * hands the rest back when the kernel stops the client. A table that is not whole is replaced, each carried quota
   * counting afresh from the lesser of the two. False, logged, when nft cannot.
   */
  async start(entries: readonly KernelQuotaEntry[] = []): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#retired) return false;
      const given = entries;
      // The table of a sluice that braked at prerouting and postrouting (by address): it would go on dropping.
      await this.#run(
        ['-f', '-'],
        `add table inet ${KERNEL_QUOTA_TABLE}\ndelete table inet ${KERNEL_QUOTA_TABLE}\n`,
      ).catch(() => undefined);
      const givenMacs = new Set(given.map((e) => e.mac));
      const table = await this.#readTable();
      const previous = new Map((table?.clients ?? []).map((q) => [q.mac, q]));
      /** Carried-over clients, with what their quota should still let through. */
      const carried: Array<{ q: InheritedQuota; left: number }> = [];
      for (const q of previous.values()) {
        const session = givenMacs.has(q.mac) ? null : this.#session(q.mac);
        if (session !== null)
          carried.push({ q, left: Math.min(Math.max(0, q.limitBytes - q.usedBytes), session.left) });
      }
      const inPlace = table?.intact === true;
      const installed: Installed[] = [
        ...given.map((e) => ({ ...e, allotment: this.#session(e.mac)?.allotment ?? null })),
        // In place the quota object stays, its limit its count plus what is left; replaced, it counts afresh.
        ...carried.map(({ q, left }) => ({
          mac: q.mac,
          limitBytes: inPlace ? q.usedBytes + left : left,
          allotment: this.#session(q.mac)?.allotment ?? null,
          inherited: true as const,
        })),
      ];
      try {
        if (inPlace) {
          const keep = new Set(carried.map(({ q }) => q.mac));
          const script = [
            ...[...previous.values()].filter((q) => !keep.has(q.mac) && !givenMacs.has(q.mac)).flatMap(removeLines),
            ...carried
              .filter(({ q, left }) => left < q.limitBytes - q.usedBytes)
              .map(({ q, left }) => limitScript({ mac: q.mac, limitBytes: q.usedBytes + left }).trimEnd()),
            ...given.map((e) => installScript(e, previous.get(e.mac)).trimEnd()),
          ].join('\n');
          try {
            if (script !== '') await this.#run(['-f', '-'], `${script}\n`);
          } catch (err) {
            // Changed between the read and the change: replace it, the carried quotas counting afresh.
            this.#log.warn('kernel quota: the table left by an earlier run could not be changed; replacing it', {
              reason: toSluiceError(err).message,
            });
            for (const e of installed) if (e.inherited) e.limitBytes = carried.find(({ q }) => q.mac === e.mac)!.left;
            await this.#run(['-f', '-'], tableScript(this.#devices, installed));
          }
        } else {
          await this.#run(['-f', '-'], tableScript(this.#devices, installed));
        }
        // The meter learns of a stop only through `nft -j`: an nft without JSON output (OpenWrt's nftables-nojson)
        // could install quotas but never tell when one is used up.
        await this.#listQuotas();
      } catch (err) {
        await this.#turnOff('kernel quota unavailable: gates close by the portal alone', err);
        return false;
      }
      this.#readFailuresInRow = 0;
      this.#entries.clear();
      for (const e of installed) this.#entries.set(e.mac, e);
      this.#enabled = true;
      this.#log.info('kernel quota on', {
        table: `netdev ${KERNEL_QUOTA_TABLE}`,
        devices: this.#devices.join(','),
        clients: installed.length,
        carried_over: carried.length,
      });
      return true;
    });
  }

  /** The table an earlier run left (null when there is none, or it cannot be read). */
  async #readTable(): Promise<TableState | null> {
    let json: string;
    try {
      json = await this.#run(['-j', 'list', 'table', 'netdev', KERNEL_QUOTA_TABLE], '');
    } catch {
      return null; // no table: a first start, or a reboot
    }
    try {
      return parseTableState(json);
    } catch (err) {
      this.#log.warn('kernel quota: the table left by an earlier run cannot be read; replacing it', {
        reason: toSluiceError(err).message,
      });
      return null;
    }
  }

  has(mac: string): boolean {
    return this.#enabled && this.#entries.has(mac);
  }

  /** The limit a client's quota was last installed or changed with (undefined: none). */
  limitOf(mac: string): number | undefined {
    return this.#enabled ? this.#entries.get(mac)?.limitBytes : undefined;
  }

  /**
   * A fresh quota of `limitBytes` for this client from now (replacing its earlier one). `via`: the nft run of a
   * transaction the caller makes (nft-batch.ts heldRun), instead of the quota's own.
   */
  set(mac: string, limitBytes: number, via?: NftRun): Promise<void> {
    return this.#set(mac, limitBytes, true, via);
  }

  /**
   * `keepKernelCount`: a quota carried over from an earlier run counted what passed while sluice was down, which the
   * caller's bytes left (from the journal) may not have billed yet, so the new quota is never more than what it still
   * lets through. A refill (the meter read the client after the kernel stopped it: its bytes left are exact) is not.
   */
  #set(mac: string, limitBytes: number, keepKernelCount: boolean, via?: NftRun): Promise<void> {
    return this.#serial(async () => {
      if (!this.#enabled) return;
      const canonical = normalizeMac(mac);
      const previous = this.#entries.get(canonical);
      const limit =
        keepKernelCount && previous?.inherited ? Math.min(limitBytes, await this.#leftOf(canonical)) : limitBytes;
      const entry = { mac: canonical, limitBytes: limit, allotment: this.#session(canonical)?.allotment ?? null };
      await this.#apply(installScript(entry, previous), () => this.#installed(entry), via);
    });
  }

  /**
   * A client's session was topped up. While the kernel still lets it through, its quota grows by what the allotment
   * grew, the count going on (exact while it downloads). Once its quota is used up, the kernel has counted the packets
   * it dropped too (seen: each dropped 1000-byte packet adds 1000), so growing the limit would hand those back as
   * short: it gets a fresh quota of the session's bytes left instead (what the portal counted; the client was stopped).
   * An allotment set lower (a RADIUS CoA-Request, ubus `change`) lowers the limit by as much, the count going on: a
   * quota used up stays used up, one with less left than the cut stops the client at the new allotment.
   */
  toppedUp(mac: string): Promise<void> {
    return this.#serial(async () => {
      const entry = this.#entries.get(mac);
      const session = this.#session(mac);
      if (!this.#enabled || entry === undefined || session === null) return;
      const grew = entry.allotment === null ? 0 : Number(session.allotment - entry.allotment);
      if (grew === 0 || !Number.isFinite(grew)) return;
      if (grew > 0 && (await this.#readUsedUp()).has(mac)) {
        const fresh = { ...entry, limitBytes: session.left, allotment: session.allotment };
        await this.#apply(installScript(fresh, entry), () => this.#installed(fresh));
        return;
      }
      // A raise is split among a shared purchase's devices as its bytes left are (each the whole would let n devices
      // pass n times the addition until the meter's next split); a lowering lowers each by all of it.
      const change = grew > 0 ? Math.floor(grew / Math.max(1, session.devices ?? 1)) : grew;
      const next = { ...entry, limitBytes: entry.limitBytes + change, allotment: session.allotment };
      await this.#apply(limitScript(next), () => this.#entries.set(mac, next));
    });
  }

  /**
   * The devices of one purchase splitting its bytes left (meter/shared-quota.ts): each client's quota is set to let
   * `shareBytes` more through from the meter's reading, its limit the kernel's count so far plus the share less what
   * the kernel counted beyond the bytes billed (noteBilled: passed since the reading, so already part of the share).
   * One read of the counts and one change for all; the count goes on, except for a quota used up, which is installed
   * afresh with its share (the kernel counts the packets it drops, beyond what it lists). Clients without a quota, or
   * that the kernel does not list, are left.
   */
  share(shares: ReadonlyArray<{ mac: string; shareBytes: number }>): Promise<void> {
    return this.#serial(async () => {
      if (!this.#enabled || shares.length === 0) return;
      let quotas: Map<string, QuotaCount>;
      try {
        quotas = await this.#listQuotas();
      } catch (err) {
        this.#log.warn('kernel quota: cannot read the quotas to split a shared allotment', {
          reason: toSluiceError(err).message,
        });
        return;
      }
      const { next, fresh } = this.#ledger.split(
        shares,
        (mac) => this.#entries.get(mac),
        (mac) => quotas.get(quotaName(mac)),
      );
      if (next.length === 0 && fresh.length === 0) return;
      const script = fresh.map(({ entry }) => installScript(entry, entry)).join('') + next.map(limitScript).join('');
      await this.#apply(script, () => {
        for (const e of next) this.#entries.set(e.mac, e);
        for (const { entry, owed } of fresh) {
          this.#installed(entry);
          this.#ledger.owe(entry.mac, owed);
        }
      });
    });
  }

  /** A fresh quota of `limitBytes` from now for a client that has one (the kernel stopped it short). */
  refill(mac: string, limitBytes: number): Promise<void> {
    const entry = this.#entries.get(mac);
    return entry === undefined ? Promise.resolve() : this.#set(mac, limitBytes, false);
  }

  /**
   * A client's quota given `limitBytes` in place, the kernel's count going on: the meter found the count reset behind
   * sluice's back (meter/brake-watch.ts verify), and a fresh count installed while bytes pass would miss those that
   * pass between the meter's reading and the change.
   */
  rearm(mac: string, limitBytes: number): Promise<void> {
    return this.#serial(async () => {
      const entry = this.#entries.get(mac);
      if (!this.#enabled || entry === undefined) return;
      const next = { ...entry, limitBytes };
      await this.#apply(limitScript(next), () => this.#entries.set(mac, next));
    });
  }

  /** Removes a client's quota (its gate closed). */
  remove(mac: string, via?: NftRun): Promise<void> {
    return this.#serial(async () => {
      const entry = this.#entries.get(mac);
      if (!this.#enabled || entry === undefined) return;
      await this.#apply(removeScript(entry), () => this.#forget(mac), via);
    });
  }

  /** A fresh quota in the kernel (a new count): nothing billed against it yet. */
  #installed(entry: Installed): void {
    this.#entries.set(entry.mac, entry);
    this.#ledger.installed(entry.mac);
  }

  #forget(mac: string): void {
    this.#entries.delete(mac);
    this.#ledger.forget(mac);
  }

  /** The meter billed `bytes` more for this client (a device of a shared purchase), counted against its next share. */
  noteBilled(mac: string, bytes: number): void {
    this.#ledger.noteBilled(mac, bytes);
  }

  /**
   * The clients whose quota is used up (the kernel drops their packets): counted ≥ limit. Not queued behind changes
   * (a read); empty when nft fails.
   */
  usedUp(): Promise<Set<string>> {
    return this.#readUsedUp();
  }

  /**
   * Each braked client's quota as the kernel lists it now (MAC → limit and bytes counted); a client whose quota the
   * kernel no longer lists (its element deleted behind sluice) is absent. Null when nft fails (counted as usedUp's
   * failures are). Not queued behind changes (a read).
   */
  async quotas(): Promise<Map<string, QuotaCount> | null> {
    const listed = await this.#readListed();
    if (listed === null) return null;
    const out = new Map<string, QuotaCount>();
    for (const mac of this.#entries.keys()) {
      const q = listed.get(quotaName(mac));
      if (q !== undefined) out.set(mac, q);
    }
    return out;
  }

  /**
   * The quotas of sluice's table: quota name → limit and bytes counted. Throws ERR_KERNEL_QUOTA. Read with the table's
   * listing, not `list quotas`, for which nft 1.0.6 reads the whole ruleset first: beside openNDS 10.3.1's 32
   * clients, 13.6 ms of nft's CPU against 4.8 (docs/performance.md "Where sluice's part goes").
   */
  async #listQuotas(): Promise<Map<string, QuotaCount>> {
    return parseQuotaList(await this.#run(['-j', 'list', 'table', 'netdev', KERNEL_QUOTA_TABLE], ''));
  }

  /** What a client's quota still lets through now; Infinity (no bound) when the kernel cannot say. */
  async #leftOf(mac: string): Promise<number> {
    try {
      const q = (await this.#listQuotas()).get(quotaName(mac));
      return q === undefined ? Infinity : Math.max(0, q.limitBytes - q.usedBytes);
    } catch {
      return Infinity;
    }
  }

  async #readUsedUp(): Promise<Set<string>> {
    const out = new Set<string>();
    const quotas = await this.#readListed();
    if (quotas === null) return out;
    for (const mac of this.#entries.keys()) {
      const q = quotas.get(quotaName(mac));
      if (q !== undefined && q.usedBytes >= q.limitBytes) out.add(mac);
    }
    return out;
  }

  /** The table's quotas by name; null when off, empty, or nft fails (READ_FAILURES_OFF in a row turn it off). */
  async #readListed(): Promise<Map<string, QuotaCount> | null> {
    if (!this.#enabled || this.#entries.size === 0) return null;
    let quotas: Map<string, QuotaCount>;
    try {
      quotas = await this.#listQuotas();
    } catch (err) {
      this.#failures++;
      if (++this.#readFailuresInRow >= READ_FAILURES_OFF) {
        // Queued, not awaited: a read may run inside a queued change (toppedUp), which would wait for itself.
        void this.#serial(() =>
          this.#turnOff(
            `kernel quota off: ${READ_FAILURES_OFF} reads of the quotas failed in a row; gates close by the ` +
              'portal alone',
            err,
          ),
        );
      } else {
        this.#log.warn('kernel quota: cannot read the quotas', { reason: toSluiceError(err).message });
      }
      return null;
    }
    this.#readFailuresInRow = 0;
    return quotas;
  }

  stats(): Record<string, number | boolean> {
    return {
      enabled: this.#enabled,
      clients: this.#entries.size,
      changes: this.#changes,
      failures: this.#failures,
    };
  }

  async #apply(script: string, onDone: () => void, via: NftRun = this.#run): Promise<void> {
    try {
      await via(['-f', '-'], script);
      this.#changes++;
      onDone();
    } catch (err) {
      this.#failures++;
      onDone();
      this.#log.warn('kernel quota change failed: rebuilding the table', { reason: toSluiceError(err).message });
      await this.#rebuild();
    }
  }

  /**
   * Off until a restart, the table deleted: it brakes where the customers are not (portal/metering-guard.ts), and a
   * session it seems to brake is cut by nobody. Its sessions are cut by the meter's readings from now.
   */
  off(reason: string): Promise<void> {
    return this.#serial(async () => {
      this.#retired = true;
      await this.#turnOff('kernel quota off: gates close by the portal alone', new Error(reason));
    });
  }

  /**
   * The table made again from the sessions (it was deleted behind sluice: portal/table-watch.ts), each client's quota
   * what its session has left now: its bytes left less what its counters counted since the meter's last billed
   * reading (rebuildWith). Without the meter's word (its counters unreadable, or the meter listing the portal), its
   * bytes left alone: what passed since that reading is let through again, at most once.
   */
  rebuild(reason: string): Promise<void> {
    return this.#serial(async () => {
      if (!this.#enabled) return;
      this.#log.warn('kernel quota: table gone; made again from the sessions', { reason, clients: this.#entries.size });
      await this.#rebuild();
    });
  }

  /**
   * The whole table again, each client's quota set to what its session has left now: its bytes left less what its
   * counters counted past the meter's billed reading, before the table is made and again after
   * (kernel-quota-catch-up.ts).
   */
  async #rebuild(): Promise<void> {
    // The meter's billed readings and the sessions' bytes left are taken in one moment: they pair.
    const since = this.#sinceBilled?.() ?? null;
    const entries: Installed[] = [];
    for (const { inherited: _carried, ...e } of this.#entries.values()) {
      // A fresh count: no longer the one carried over from an earlier run.
      const session = this.#session(e.mac);
      if (session !== null) entries.push({ ...e, limitBytes: session.left, allotment: session.allotment });
    }
    const left = new Map(entries.map((e) => [e.mac, e.limitBytes]));
    const unread = (step: string) => (err: unknown) => {
      this.#log.warn(`kernel quota: the counters cannot be read; the quotas made again not ${step}`, {
        reason: toSluiceError(err).message,
      });
      return null;
    };
    const counted = since === null ? null : await countedNow(this.#run, since).catch(unread('lowered'));
    for (const e of entries) e.limitBytes = Math.max(0, e.limitBytes - (counted?.get(e.mac) ?? 0));
    try {
      await this.#run(['-f', '-'], tableScript(this.#devices, entries));
      this.#entries.clear();
      this.#ledger.clear();
      for (const e of entries) this.#installed(e); // every count starts again
    } catch (err) {
      await this.#turnOff('kernel quota off: the table cannot be rebuilt', err);
      return;
    }
    if (since === null || counted === null) return;
    for (const { mac, limitBytes } of (await catchUp(this.#run, since, left).catch(unread('caught up'))) ?? []) {
      const e = this.#entries.get(mac);
      if (e !== undefined) this.#entries.set(mac, { ...e, limitBytes });
    }
  }

  /**
   * Off, and the table deleted where nft still can: a table left behind would go on dropping the packets of clients
   * whose quota is used up, a new paying session of the same device included, with nothing left to lift it.
   */
  async #turnOff(message: string, err: unknown): Promise<void> {
    const wasOn = this.#enabled || this.#entries.size > 0;
    this.#enabled = false;
    this.#entries.clear();
    this.#ledger.clear();
    let deleted = true;
    try {
      await this.#run(['delete', 'table', 'netdev', KERNEL_QUOTA_TABLE], '');
    } catch {
      deleted = false; // none was made, or nft cannot run at all
    }
    this.#log.warn(message, {
      reason: toSluiceError(err).message,
      ...(wasOn || deleted ? { table_deleted: deleted } : {}),
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
