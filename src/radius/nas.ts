/**
 * What every request sluice sends says about the NAS and the client: NAS-Identifier, NAS-IP(v6)-Address,
 * NAS-Port-Type Wireless-802.11, Called-Station-Id, Calling-Station-Id in RFC 3580 form (02-00-00-00-0A-01).
 */
import { createUdpSocket } from './udp.ts';
import { isIPv4, isIPv6 } from 'node:net';
import type { AttributeInput } from './packet.ts';

export interface NasIdentity {
  identifier: string;
  /** IPv4 or IPv6; empty = not sent. */
  ip: string;
  calledStationId: string;
}

/** `aa:bb:cc:00:0a:01` → `AA-BB-CC-00-0A-01` (RFC 3580 §3.21). */
export function rfc3580Mac(mac: string): string {
  return mac.toUpperCase().replace(/:/g, '-');
}

/**
 * `02-00-00-00-0A-01`, `0200.0000.0a01`, `020000000a01` or colon form → `02:00:00:00:0a:01`; null when it is not a MAC.
 */
export function macFromStationId(text: string): string | null {
  const hex = text.replace(/[-:.\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{12}$/.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}

export function nasAttributes(nas: NasIdentity): AttributeInput[] {
  const out: AttributeInput[] = [['NAS-Identifier', nas.identifier]];
  if (isIPv4(nas.ip)) out.push(['NAS-IP-Address', nas.ip]);
  else if (isIPv6(nas.ip)) out.push(['NAS-IPv6-Address', nas.ip]);
  out.push(['NAS-Port-Type', 'Wireless-802.11']);
  if (nas.calledStationId !== '') out.push(['Called-Station-Id', nas.calledStationId]);
  return out;
}

/** The local address the kernel would use to reach `host` (no packet is sent): the default NAS-IP-Address. */
export async function localAddressToward(host: string, port: number): Promise<string> {
  const socket = createUdpSocket(isIPv6(host) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, host, () => resolve());
    });
    return socket.address().address;
  } catch {
    return '';
  } finally {
    socket.close();
  }
}
