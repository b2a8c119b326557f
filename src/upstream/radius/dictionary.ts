/**
 * The RADIUS attributes sluice speaks, compiled in (numbers and types as in FreeRADIUS's dictionary.rfc2865/2866/2869/
 * 3162/5176, dictionary.chillispot (plus CoovaChilli's gigaword limits 21–23) and dictionary.mikrotik). Compiled in
 * rather than read from the `radius` package's dictionary files at run time: the router runs one esbuild bundle with no
 * node_modules, where those files do not exist (see docs/radius.md). The tests check this table against the package's
 * and FreeRADIUS's dictionaries, so a typo here cannot hide.
 */
export type AttributeKind = 'string' | 'octets' | 'integer' | 'ipaddr' | 'ipv6addr' | 'date';

export interface AttributeDef {
  name: string;
  type: number;
  /** 0 for standard attributes, else the vendor's IANA number (the attribute is a Vendor-Specific sub-attribute). */
  vendor: number;
  kind: AttributeKind;
  /** Named integer values (Acct-Status-Type Start = 1 …). */
  values?: Readonly<Record<string, number>>;
}

export const VENDOR_CHILLISPOT = 14559;
export const VENDOR_MIKROTIK = 14988;
export const VENDOR_WISPR = 14122;
export const VENDOR_SPECIFIC = 26;

export const ACCT_STATUS = { Start: 1, Stop: 2, 'Interim-Update': 3, 'Accounting-On': 7, 'Accounting-Off': 8 } as const;
export const TERMINATE_CAUSE = {
  'User-Request': 1, 'Lost-Carrier': 2, 'Lost-Service': 3, 'Idle-Timeout': 4, 'Session-Timeout': 5, 'Admin-Reset': 6,
  'Admin-Reboot': 7, 'Port-Error': 8, 'NAS-Error': 9, 'NAS-Request': 10, 'NAS-Reboot': 11, 'Port-Unneeded': 12,
  'Port-Preempted': 13, 'Port-Suspended': 14, 'Service-Unavailable': 15, 'Callback': 16, 'User-Error': 17, 'Host-Request': 18,
} as const;
export const ERROR_CAUSE = {
  'Residual-Context-Removed': 201, 'Invalid-EAP-Packet': 202, 'Unsupported-Attribute': 401, 'Missing-Attribute': 402,
  'NAS-Identification-Mismatch': 403, 'Invalid-Request': 404, 'Unsupported-Service': 405, 'Unsupported-Extension': 406,
  'Administratively-Prohibited': 501, 'Proxy-Request-Not-Routable': 502, 'Session-Context-Not-Found': 503,
  'Session-Context-Not-Removable': 504, 'Proxy-Processing-Error': 505, 'Resources-Unavailable': 506, 'Request-Initiated': 507,
} as const;

const std = (name: string, type: number, kind: AttributeKind, values?: Record<string, number>): AttributeDef =>
  values ? { name, type, vendor: 0, kind, values } : { name, type, vendor: 0, kind };
const vsa = (vendor: number, name: string, type: number, kind: AttributeKind): AttributeDef => ({ name, type, vendor, kind });

export const ATTRIBUTES: readonly AttributeDef[] = [
  std('User-Name', 1, 'string'),
  std('User-Password', 2, 'octets'),
  std('NAS-IP-Address', 4, 'ipaddr'),
  std('NAS-Port', 5, 'integer'),
  std('Service-Type', 6, 'integer', { Login: 1, Framed: 2, 'Authorize-Only': 17 }),
  std('Framed-IP-Address', 8, 'ipaddr'),
  std('Filter-Id', 11, 'string'),
  std('Reply-Message', 18, 'string'),
  std('State', 24, 'octets'),
  std('Class', 25, 'octets'),
  std('Vendor-Specific', 26, 'octets'),
  std('Session-Timeout', 27, 'integer'),
  std('Idle-Timeout', 28, 'integer'),
  std('Termination-Action', 29, 'integer'),
  std('Called-Station-Id', 30, 'string'),
  std('Calling-Station-Id', 31, 'string'),
  std('NAS-Identifier', 32, 'string'),
  std('Proxy-State', 33, 'octets'),
  std('Acct-Status-Type', 40, 'integer', ACCT_STATUS),
  std('Acct-Delay-Time', 41, 'integer'),
  std('Acct-Input-Octets', 42, 'integer'),
  std('Acct-Output-Octets', 43, 'integer'),
  std('Acct-Session-Id', 44, 'string'),
  std('Acct-Authentic', 45, 'integer', { RADIUS: 1, Local: 2, Remote: 3 }),
  std('Acct-Session-Time', 46, 'integer'),
  std('Acct-Input-Packets', 47, 'integer'),
  std('Acct-Output-Packets', 48, 'integer'),
  std('Acct-Terminate-Cause', 49, 'integer', TERMINATE_CAUSE),
  std('Acct-Multi-Session-Id', 50, 'string'),
  std('Acct-Input-Gigawords', 52, 'integer'),
  std('Acct-Output-Gigawords', 53, 'integer'),
  std('Event-Timestamp', 55, 'date'),
  std('NAS-Port-Type', 61, 'integer', { 'Wireless-802.11': 19 }),
  std('Message-Authenticator', 80, 'octets'),
  std('Acct-Interim-Interval', 85, 'integer'),
  std('NAS-Port-Id', 87, 'string'),
  std('NAS-IPv6-Address', 95, 'ipv6addr'),
  std('Error-Cause', 101, 'integer', ERROR_CAUSE),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Max-Input-Octets', 1, 'integer'),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Max-Output-Octets', 2, 'integer'),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Max-Total-Octets', 3, 'integer'),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Bandwidth-Max-Up', 4, 'integer'),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Bandwidth-Max-Down', 5, 'integer'),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Max-Input-Gigawords', 21, 'integer'),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Max-Output-Gigawords', 22, 'integer'),
  vsa(VENDOR_CHILLISPOT, 'ChilliSpot-Max-Total-Gigawords', 23, 'integer'),
  vsa(VENDOR_MIKROTIK, 'Mikrotik-Recv-Limit', 1, 'integer'),
  vsa(VENDOR_MIKROTIK, 'Mikrotik-Xmit-Limit', 2, 'integer'),
  vsa(VENDOR_MIKROTIK, 'Mikrotik-Rate-Limit', 8, 'string'),
  vsa(VENDOR_MIKROTIK, 'Mikrotik-Recv-Limit-Gigawords', 14, 'integer'),
  vsa(VENDOR_MIKROTIK, 'Mikrotik-Xmit-Limit-Gigawords', 15, 'integer'),
  vsa(VENDOR_MIKROTIK, 'Mikrotik-Total-Limit', 17, 'integer'),
  vsa(VENDOR_MIKROTIK, 'Mikrotik-Total-Limit-Gigawords', 18, 'integer'),
];

export type AttributeName = (typeof ATTRIBUTES)[number]['name'];

const byName = new Map<string, AttributeDef>(ATTRIBUTES.map((a) => [a.name, a]));
const byKey = new Map<string, AttributeDef>(ATTRIBUTES.map((a) => [`${a.vendor}:${a.type}`, a]));

export function attributeByName(name: string): AttributeDef | undefined {
  return byName.get(name);
}

export function attributeByCode(vendor: number, type: number): AttributeDef | undefined {
  return byKey.get(`${vendor}:${type}`);
}
