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

/** C's `%.2f` of bytes/125/seconds. toFixed differs from glibc only on exact binary ties, which these never bill on. */
function kbitAvg(bytes: number, seconds: number): string {
  // Half the clients of a large list have counted nothing: "0.00" without a division and a toFixed.
  return bytes === 0 ? '0.00' : (bytes / 125 / seconds).toFixed(2);
}

/** A value openNDS prints as "null" when it is 0. */
const orNull = (n: number): number | string => (n === 0 ? 'null' : n);

/**
 * A rendering built with `+` and flattened every BATCH characters. Concatenated strings are a tree until something
 * flattens them: left whole, 100k clients' trees outlive many collections, which then copy them; flattened as they
 * grow, their parts die young. `+` of a client's pieces rather than a join of them: V8's join costs more a piece.
 */
class Text {
  static readonly BATCH = 1 << 18;
  readonly #done: string[] = [];
  #text: string;

  constructor(head: string) {
    this.#text = head;
  }

  add(piece: string): void {
    this.#text += piece;
    if (this.#text.length >= Text.BATCH) {
      // Reading a character flattens a concatenated string in place (V8): its parts are garbage while still young.
      this.#text.charCodeAt(0);
      this.#done.push(this.#text);
      this.#text = '';
    }
  }

  join(): string {
    this.#done.push(this.#text);
    this.#text = '';
    return this.#done.join('');
  }
}

/**
 * The text of an openNDS client object between its values, for one gateway and indent (each piece from the `",` that
 * ends the value before it to the `":"` that opens the next), made once per rendering. Joined, not concatenated: flat
 * strings, which each client's concatenation copies as they are.
 */
function openNdsFrame(gw: GatewayInfo, indent: string) {
  const p = `  ${indent}"`;
  const next = (key: string, value = ''): string => ['",\n', p, key, '":"', value].join('');
  /** A direction's three rate-limit fields when it has no limit. */
  const none = (dir: string): string =>
    [
      next(`${dir}_rate_limit_threshold`, 'null'),
      next(`${dir}_packet_rate`, 'null'),
      next(`${dir}_bucket_size`, 'null'),
    ].join('');
  return {
    head: [
      p,
      'gatewayname":"',
      gw.gatewayName,
      next('gatewayaddress', gw.gatewayAddress),
      next('gatewayfqdn', gw.gatewayFqdn),
      next('version', gw.version),
      next('client_type'),
    ].join(''),
    mac: next('mac'),
    ip: next('ip'),
    sessionStart: [next('clientif', gw.clientIf), next('session_start')].join(''),
    sessionEnd: next('session_end'),
    lastActive: next('last_active'),
    token: next('token'),
    state: next('state'),
    custom: next('custom'),
    downNone: none('download'),
    downRate: next('download_rate_limit_threshold'),
    downPackets: next('download_packet_rate'),
    downBucket: next('download_bucket_size'),
    upNone: none('upload'),
    upRate: next('upload_rate_limit_threshold'),
    upPackets: next('upload_packet_rate'),
    upBucket: next('upload_bucket_size'),
    downloadQuota: next('download_quota'),
    uploadQuota: next('upload_quota'),
    downloadKiB: next('download_this_session'),
    downloadAvg: next('download_session_avg'),
    uploadKiB: next('upload_this_session'),
    uploadAvg: next('upload_session_avg'),
    end: '"\n',
  };
}
type OpenNdsFrame = ReturnType<typeof openNdsFrame>;

/** The last frame made, with what it was made from: a caller rendering client by client reuses it. */
let lastFrame: { gw: GatewayInfo; indent: string; frame: OpenNdsFrame } | undefined;

/** openNdsFrame, made again only when the gateway's fields or the indent differ from the last one's. */
function frameFor(gw: GatewayInfo, indent: string): OpenNdsFrame {
  const last = lastFrame;
  if (
    last !== undefined &&
    last.indent === indent &&
    last.gw.gatewayName === gw.gatewayName &&
    last.gw.gatewayAddress === gw.gatewayAddress &&
    last.gw.gatewayFqdn === gw.gatewayFqdn &&
    last.gw.version === gw.version &&
    last.gw.clientIf === gw.clientIf
  )
    return last.frame;
  const frame = openNdsFrame(gw, indent);
  // A copy of the fields: the caller's object (a model's config) may change after.
  const { gatewayName, gatewayAddress, gatewayFqdn, version, clientIf } = gw;
  lastFrame = { gw: { gatewayName, gatewayAddress, gatewayFqdn, version, clientIf }, indent, frame };
  return frame;
}

/** One openNDS client object's fields (ndsctl_json_client), after its key. */
function openNdsFields(c: SimClient, f: OpenNdsFrame, now: number): string {
  // durationsecs is unsigned and clamped to >= 1 (openNDS: "prevent division by 0").
  const duration = Math.max(1, now - c.sessionStart);
  const down =
    c.downloadRate === 0
      ? f.downNone
      : `${f.downRate}${c.downloadRate}${f.downPackets}${orNull(c.downloadPacketRate)}${f.downBucket}` +
        `${c.downloadPacketRate === 0 ? 'null' : c.downloadBucketSize}`;
  const up =
    c.uploadRate === 0
      ? f.upNone
      : `${f.upRate}${c.uploadRate}${f.upPackets}${orNull(c.uploadPacketRate)}${f.upBucket}` +
        `${c.uploadPacketRate === 0 ? 'null' : c.uploadBucketSize}`;
  return (
    `${f.head}${c.clientType === '' ? 'cpd_can' : c.clientType}${f.mac}${c.mac}${f.ip}${c.ip}` +
    `${f.sessionStart}${c.sessionStart}${f.sessionEnd}${orNull(c.sessionEnd)}${f.lastActive}${c.lastActive}` +
    `${f.token}${c.token === '' ? 'none' : c.token}${f.state}${c.state}` +
    // Printed unescaped, as openNDS does: a quote in custom corrupts the real output too.
    `${f.custom}${c.custom === '' ? 'none' : c.custom}${down}${up}` +
    `${f.downloadQuota}${orNull(c.downloadQuota)}${f.uploadQuota}${orNull(c.uploadQuota)}` +
    `${f.downloadKiB}${Math.floor(c.downloadBytes / 1024)}${f.downloadAvg}${kbitAvg(c.downloadBytes, duration)}` +
    `${f.uploadKiB}${Math.floor(c.uploadBytes / 1024)}${f.uploadAvg}${kbitAvg(c.uploadBytes, duration)}${f.end}`
  );
}

export function renderOpenNdsClient(c: SimClient, gw: GatewayInfo, now: number, indent: string): string {
  return openNdsFields(c, frameFor(gw, indent), now);
}

export function renderOpenNdsAll(
  clients: Iterable<SimClient>,
  count: number,
  gw: GatewayInfo,
  now: number,
  trusted: readonly string[],
): string {
  const indent = '    ';
  const frame = frameFor(gw, indent);
  const text = new Text(`{\n  "client_list_length":"${count}",\n  "clients":{\n`);
  const open = `${indent}"`;
  const between = `${indent}},\n${indent}"`;
  let first = true;
  for (const c of clients) {
    text.add(`${first ? open : between}${c.mac}":{\n${openNdsFields(c, frame, now)}`);
    first = false;
  }
  if (!first) text.add(`${indent}}\n`);
  if (trusted.length > 0) {
    text.add(`  },\n  "trusted_list_length":"${trusted.length}",\n  "trusted":[\n`);
    text.add(`${trusted.map((mac) => `    "${mac}"`).join(',\n')}\n  ]\n`);
  } else {
    text.add('  }\n');
  }
  text.add('}\n');
  return text.join();
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
  const text = new Text(`{\n"client_length": ${count},\n"clients":{\n`);
  let first = true;
  for (const c of clients) {
    text.add(`${first ? '' : '},\n'}"${c.mac}":{\n${renderNodogsplashClient(c, now)}`);
    first = false;
  }
  if (!first) text.add('}\n');
  text.add('}\n}\n');
  return text.join();
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
