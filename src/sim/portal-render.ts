import type { PortalFlavour } from '../portal/index.ts';

/**
 * Byte-compatible renderings of `ndsctl json`, following the printf calls in openNDS 9.10 src/util.c
 * (ndsctl_json_client/_one/_all) and nodogsplash 5.0.2 src/util.c. Plain string building: the demo renders
 * 100k clients per tick.
 */

/** What a portal keeps per client. Counters in bytes; times in unix seconds, 0 = none (as in the C structs). */
export interface SimClient {
  id: number;
  mac: string;
  ip: string;
  token: string;
  state: string;
  clientType: string;
  sessionStart: number;
  sessionEnd: number;
  lastActive: number;
  custom: string;
  /** kbit/s, 0 = none. */
  downloadRate: number;
  uploadRate: number;
  /** Set by openNDS's rate limiter; 0 renders "null". */
  downloadPacketRate: number;
  downloadBucketSize: number;
  uploadPacketRate: number;
  uploadBucketSize: number;
  /** KiB, 0 = none. */
  downloadQuota: number;
  uploadQuota: number;
  downloadBytes: number;
  uploadBytes: number;
}

export interface GatewayInfo {
  /** Rendered verbatim (openNDS prints its URL-encoded gateway name). */
  gatewayName: string;
  gatewayAddress: string;
  gatewayFqdn: string;
  version: string;
  clientIf: string;
}

const orNull = (n: number): string => (n === 0 ? 'null' : String(n));

/** C's `%.2f` of bytes/125/seconds. toFixed differs from glibc only on exact binary ties, which these never bill on. */
function kbitAvg(bytes: number, seconds: number): string {
  return (bytes / 125 / seconds).toFixed(2);
}

export function renderOpenNdsClient(c: SimClient, gw: GatewayInfo, now: number, indent: string): string {
  const p = `  ${indent}"`;
  // durationsecs is unsigned and clamped to >= 1 (openNDS: "prevent division by 0").
  const duration = Math.max(1, now - c.sessionStart);
  const down =
    c.downloadRate === 0
      ? `${p}download_rate_limit_threshold":"null",\n${p}download_packet_rate":"null",\n` +
        `${p}download_bucket_size":"null",\n`
      : `${p}download_rate_limit_threshold":"${c.downloadRate}",\n` +
        `${p}download_packet_rate":"${orNull(c.downloadPacketRate)}",\n` +
        `${p}download_bucket_size":"${c.downloadPacketRate === 0 ? 'null' : c.downloadBucketSize}",\n`;
  const up =
    c.uploadRate === 0
      ? `${p}upload_rate_limit_threshold":"null",\n${p}upload_packet_rate":"null",\n` +
        `${p}upload_bucket_size":"null",\n`
      : `${p}upload_rate_limit_threshold":"${c.uploadRate}",\n` +
        `${p}upload_packet_rate":"${orNull(c.uploadPacketRate)}",\n` +
        `${p}upload_bucket_size":"${c.uploadPacketRate === 0 ? 'null' : c.uploadBucketSize}",\n`;
  return (
    `${p}gatewayname":"${gw.gatewayName}",\n` +
    `${p}gatewayaddress":"${gw.gatewayAddress}",\n` +
    `${p}gatewayfqdn":"${gw.gatewayFqdn}",\n` +
    `${p}version":"${gw.version}",\n` +
    `${p}client_type":"${c.clientType === '' ? 'cpd_can' : c.clientType}",\n` +
    `${p}mac":"${c.mac}",\n` +
    `${p}ip":"${c.ip}",\n` +
    `${p}clientif":"${gw.clientIf}",\n` +
    `${p}session_start":"${c.sessionStart}",\n` +
    `${p}session_end":"${orNull(c.sessionEnd)}",\n` +
    `${p}last_active":"${c.lastActive}",\n` +
    `${p}token":"${c.token === '' ? 'none' : c.token}",\n` +
    `${p}state":"${c.state}",\n` +
    // Printed unescaped, as openNDS does: a quote in custom corrupts the real output too.
    `${p}custom":"${c.custom === '' ? 'none' : c.custom}",\n` +
    down +
    up +
    `${p}download_quota":"${orNull(c.downloadQuota)}",\n` +
    `${p}upload_quota":"${orNull(c.uploadQuota)}",\n` +
    `${p}download_this_session":"${Math.floor(c.downloadBytes / 1024)}",\n` +
    `${p}download_session_avg":"${kbitAvg(c.downloadBytes, duration)}",\n` +
    `${p}upload_this_session":"${Math.floor(c.uploadBytes / 1024)}",\n` +
    `${p}upload_session_avg":"${kbitAvg(c.uploadBytes, duration)}"\n`
  );
}

/**
 * The pieces of a rendering, joined into one flat string every BATCH pieces. A client's rendering is a tree of some
 * sixty concatenated strings until it is flattened: 100k clients' trees held for one join at the end make the
 * collector most of a render's time (100k openNDS clients: 2.6 s of CPU against 0.6 s in batches, load 15).
 */
class FlatParts {
  static readonly BATCH = 1024;
  readonly #done: string[] = [];
  #batch: string[];

  constructor(first: string) {
    this.#batch = [first];
  }

  push(...pieces: string[]): void {
    this.#batch.push(...pieces);
    if (this.#batch.length >= FlatParts.BATCH) {
      this.#done.push(this.#batch.join(''));
      this.#batch = [];
    }
  }

  /** One flat string: the last batch joined with the others, not `+` to their join (read, that flattens: a copy). */
  join(): string {
    this.#done.push(this.#batch.join(''));
    this.#batch = [];
    return this.#done.join('');
  }
}

export function renderOpenNdsAll(
  clients: Iterable<SimClient>,
  count: number,
  gw: GatewayInfo,
  now: number,
  trusted: readonly string[],
): string {
  const indent = '    ';
  const parts = new FlatParts(`{\n  "client_list_length":"${count}",\n  "clients":{\n`);
  let first = true;
  for (const c of clients) {
    parts.push(`${first ? '' : `${indent}},\n`}${indent}"${c.mac}":{\n`, renderOpenNdsClient(c, gw, now, indent));
    first = false;
  }
  if (!first) parts.push(`${indent}}\n`);
  if (trusted.length > 0) {
    parts.push(`  },\n  "trusted_list_length":"${trusted.length}",\n  "trusted":[\n`);
    parts.push(trusted.map((mac) => `    "${mac}"`).join(',\n'), '\n  ]\n');
  } else {
    parts.push('  }\n');
  }
  parts.push('}\n');
  return parts.join();
}

export function renderOpenNdsOne(c: SimClient | undefined, gw: GatewayInfo, now: number): string {
  return c === undefined ? '{}\n' : `{\n${renderOpenNdsClient(c, gw, now, '')}}\n`;
}

/**
 * glibc's `%.2f`: x/0 prints "inf", 0.0/0.0 prints "-nan" (x86's default NaN has the sign bit set). nodogsplash
 * divides by `now - added` unguarded, so a client authed through the splash page this very second prints these.
 */
function cAvg(bytes: number, seconds: number): string {
  if (seconds === 0) return bytes === 0 ? '-nan' : 'inf';
  return kbitAvg(bytes, seconds);
}

export function renderNodogsplashClient(c: SimClient, now: number): string {
  const duration = now - c.sessionStart;
  return (
    `"id":${c.id},\n` +
    `"ip":"${c.ip}",\n` +
    `"mac":"${c.mac}",\n` +
    `"added":${c.sessionStart},\n` +
    `"active":${c.lastActive},\n` +
    `"duration":${c.sessionStart === 0 ? 0 : duration},\n` +
    `"token":"${c.token === '' ? 'none' : c.token}",\n` +
    `"state":"${c.state}",\n` +
    `"downloaded":${Math.floor(c.downloadBytes / 1000)},\n` +
    `"avg_down_speed":${cAvg(c.downloadBytes, duration)},\n` +
    `"uploaded":${Math.floor(c.uploadBytes / 1000)},\n` +
    `"avg_up_speed":${cAvg(c.uploadBytes, duration)}\n`
  );
}

export function renderNodogsplashAll(clients: Iterable<SimClient>, count: number, now: number): string {
  const parts = new FlatParts(`{\n"client_length": ${count},\n"clients":{\n`);
  let first = true;
  for (const c of clients) {
    parts.push(`${first ? '' : '},\n'}"${c.mac}":{\n`, renderNodogsplashClient(c, now));
    first = false;
  }
  if (!first) parts.push('}\n');
  parts.push('}\n}\n');
  return parts.join();
}

export function renderNodogsplashOne(c: SimClient | undefined, now: number): string {
  return c === undefined ? '{}\n' : `{\n${renderNodogsplashClient(c, now)}}\n`;
}

export function renderJsonFor(
  flavour: PortalFlavour,
  clients: Iterable<SimClient>,
  count: number,
  gw: GatewayInfo,
  now: number,
  trusted: readonly string[],
): string {
  return flavour === 'opennds'
    ? renderOpenNdsAll(clients, count, gw, now, trusted)
    : renderNodogsplashAll(clients, count, now);
}
