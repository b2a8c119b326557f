/**
 * Which paying clients showed up on an address the portal has not listed them with, from the kernel's neighbour table
 * (`/proc/net/arp`: a file read, no call to the portal). openNDS keeps one client per MAC and address: a device that
 * took a new lease is listed again, behind the splash, and only a listing shows sluice that its gate must be re-opened
 * there (docs/operations.md "A new address under the same MAC"). With the kernel's counters sluice lists the portal
 * rarely, and a moved client never stalls (it keeps retrying), so without this the customer waits for the safety
 * net's listing, a minute or two. Each (MAC, address) pair is news once: the listings' addresses and the pairs already
 * reported are known; a MAC neither listed nor paying is forgotten. Pure: the table's text and the MACs come in as
 * arguments.
 */

/** The kernel's ATF_COM flag (include/uapi/linux/if_arp.h): the entry is resolved. */
const ATF_COM = 0x02;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export class AddressWatch {
  /** By MAC: the addresses listings showed it with, or that were reported already. */
  private readonly known = new Map<string, Set<string>>();
  /** The MACs of the last listing, and those paying at the last look: the others are forgotten. */
  private listedMacs: ReadonlySet<string> = new Set();
  private paying: ReadonlySet<string> = new Set();
  /**
   * MACs sluice is authing now (their counters are made just before the auth, so they count as paying); their address
   * comes with the auth. Each auth's start and end come in pairs (the gate's `auth-starting`, `auth-finished`).
   */
  private readonly opening = new Set<string>();

  /** A listing's addresses (mac, ip, mac, ip…; '' for none): each known from now. */
  listed(flat: readonly string[]): void {
    const macs = new Set<string>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      macs.add(flat[i]!);
      if (flat[i + 1] !== '') this.know(flat[i]!, flat[i + 1]!);
    }
    this.listedMacs = macs;
    this.forget();
  }

  /**
   * sluice is about to auth `mac`: until its outcome (`settled`) the neighbour table's address for it is not news.
   * A paying client's counters are made just before its auth, and on a busy portal the auth takes seconds: a look at
   * the table in between took every new customer for a moved client and listed the portal.
   */
  authing(mac: string): void {
    this.opening.add(mac);
  }

  /** The auth of `mac` ended (opened, or not: then an address no listing showed is news again). */
  settled(mac: string): void {
    this.opening.delete(mac);
  }

  /** sluice authed `mac` on `ip`: the portal lists it there, the pair is known. */
  authed(mac: string, ip: string): void {
    this.know(mac, ip);
  }

  /**
   * How many paying clients (`paying`: canonical MACs) the neighbour table's text shows on an address not known for
   * them (each pair then known).
   */
  news(table: string, paying: ReadonlySet<string>): number {
    this.paying = paying;
    this.forget();
    let news = 0;
    // "IP address  HW type  Flags  HW address  Mask  Device", one entry a line after the header.
    for (const line of table.split('\n').slice(1)) {
      const [ip, , flags, hw] = line.trim().split(/\s+/);
      if (ip === undefined || hw === undefined || flags === undefined || !IPV4.test(ip)) continue;
      if ((Number.parseInt(flags, 16) & ATF_COM) === 0) continue;
      const mac = hw.toLowerCase();
      if (!paying.has(mac) || this.opening.has(mac) || this.known.get(mac)?.has(ip)) continue;
      this.know(mac, ip);
      news++;
    }
    return news;
  }

  /** Bounded by the clients listed and paying: a MAC neither is forgotten. */
  private forget(): void {
    for (const mac of this.known.keys()) if (!this.listedMacs.has(mac) && !this.paying.has(mac)) this.known.delete(mac);
  }

  private know(mac: string, ip: string): void {
    let ips = this.known.get(mac);
    if (ips === undefined) this.known.set(mac, (ips = new Set()));
    ips.add(ip);
  }
}
