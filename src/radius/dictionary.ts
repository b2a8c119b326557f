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
  'User-Request': 1,
  'Lost-Carrier': 2,
  'Lost-Service': 3,
  'Idle-Timeout': 4,
  'Session-Timeout': 5,
  'Admin-Reset': 6,
  'Admin-Reboot': 7,
  'Port-Error': 8,
  'NAS-Error': 9,
  'NAS-Request': 10,
  'NAS-Reboot': 11,
  'Port-Unneeded': 12,
  'Port-Preempted': 13,
  'Port-Suspended': 14,
  'Service-Unavailable': 15,
  Callback: 16,
  'User-Error': 17,
  'Host-Request': 18,
} as const;
export const ERROR_CAUSE = {
  'Residual-Context-Removed': 201,
  'Invalid-EAP-Packet': 202,
  'Unsupported-Attribute': 401,
  'Missing-Attribute': 402,
  'NAS-Identification-Mismatch': 403,
  'Invalid-Request': 404,
  'Unsupported-Service': 405,
  'Unsupported-Extension': 406,
  'Administratively-Prohibited': 501,
  'Proxy-Request-Not-Routable': 502,
  'Session-Context-Not-Found': 503,
  'Session-Context-Not-Removable': 504,
  'Proxy-Processing-Error': 505,
  'Resources-Unavailable': 506,
  'Request-Initiated': 507,
} as const;

/** Named integer values, by attribute. */
const VALUES: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  'Service-Type': { Login: 1, Framed: 2, 'Authorize-Only': 17 },
  'Acct-Status-Type': ACCT_STATUS,
  'Acct-Authentic': { RADIUS: 1, Local: 2, Remote: 3 },
  'Acct-Terminate-Cause': TERMINATE_CAUSE,
  'NAS-Port-Type': { 'Wireless-802.11': 19 },
  'Error-Cause': ERROR_CAUSE,
};

/** Attribute numbers by vendor (0: standard) and kind. */
const NUMBERS: ReadonlyArray<
  readonly [vendor: number, byKind: Partial<Record<AttributeKind, Record<string, number>>>]
> = [
  [
    0,
    {
      string: {
        'User-Name': 1,
        'Filter-Id': 11,
        'Reply-Message': 18,
        'Called-Station-Id': 30,
        'Calling-Station-Id': 31,
        'NAS-Identifier': 32,
        'Acct-Session-Id': 44,
        'Acct-Multi-Session-Id': 50,
        'NAS-Port-Id': 87,
      },
      octets: {
        'User-Password': 2,
        State: 24,
        Class: 25,
        'Vendor-Specific': 26,
        'Proxy-State': 33,
        'Message-Authenticator': 80,
      },
      integer: {
        'NAS-Port': 5,
        'Service-Type': 6,
        'Session-Timeout': 27,
        'Idle-Timeout': 28,
        'Termination-Action': 29,
        'Acct-Status-Type': 40,
        'Acct-Delay-Time': 41,
        'Acct-Input-Octets': 42,
        'Acct-Output-Octets': 43,
        'Acct-Authentic': 45,
        'Acct-Session-Time': 46,
        'Acct-Input-Packets': 47,
        'Acct-Output-Packets': 48,
        'Acct-Terminate-Cause': 49,
        'Acct-Input-Gigawords': 52,
        'Acct-Output-Gigawords': 53,
        'NAS-Port-Type': 61,
        'Acct-Interim-Interval': 85,
        'Error-Cause': 101,
      },
      ipaddr: { 'NAS-IP-Address': 4, 'Framed-IP-Address': 8 },
      ipv6addr: { 'NAS-IPv6-Address': 95 },
      date: { 'Event-Timestamp': 55 },
    },
  ],
  [
    VENDOR_CHILLISPOT,
    {
      integer: {
        'ChilliSpot-Max-Input-Octets': 1,
        'ChilliSpot-Max-Output-Octets': 2,
        'ChilliSpot-Max-Total-Octets': 3,
        'ChilliSpot-Bandwidth-Max-Up': 4,
        'ChilliSpot-Bandwidth-Max-Down': 5,
        'ChilliSpot-Max-Input-Gigawords': 21,
        'ChilliSpot-Max-Output-Gigawords': 22,
        'ChilliSpot-Max-Total-Gigawords': 23,
      },
    },
  ],
  // WISPr (Wi-Fi Alliance, as CoovaChilli and FreeRADIUS's dictionary.wispr number them): rates in bits per second.
  [
    VENDOR_WISPR,
    {
      integer: { 'WISPr-Bandwidth-Max-Up': 7, 'WISPr-Bandwidth-Max-Down': 8 },
    },
  ],
  [
    VENDOR_MIKROTIK,
    {
      integer: {
        'Mikrotik-Recv-Limit': 1,
        'Mikrotik-Xmit-Limit': 2,
        'Mikrotik-Recv-Limit-Gigawords': 14,
        'Mikrotik-Xmit-Limit-Gigawords': 15,
        'Mikrotik-Total-Limit': 17,
        'Mikrotik-Total-Limit-Gigawords': 18,
      },
      string: { 'Mikrotik-Rate-Limit': 8 },
    },
  ],
];

export const ATTRIBUTES: readonly AttributeDef[] = NUMBERS.flatMap(([vendor, byKind]) =>
  Object.entries(byKind).flatMap(([kind, numbers]) =>
    Object.entries(numbers).map(([name, type]): AttributeDef => {
      const values = VALUES[name];
      return values
        ? { name, type, vendor, kind: kind as AttributeKind, values }
        : { name, type, vendor, kind: kind as AttributeKind };
    }),
  ),
);

export type AttributeName = (typeof ATTRIBUTES)[number]['name'];

const byName = new Map<string, AttributeDef>(ATTRIBUTES.map((a) => [a.name, a]));
const byKey = new Map<string, AttributeDef>(ATTRIBUTES.map((a) => [`${a.vendor}:${a.type}`, a]));

export function attributeByName(name: string): AttributeDef | undefined {
  return byName.get(name);
}

export function attributeByCode(vendor: number, type: number): AttributeDef | undefined {
  return byKey.get(`${vendor}:${type}`);
}
