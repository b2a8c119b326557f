/**
 * ubus wire constants. Sources: openwrt/ubus `ubusmsg.h` (message types, attrs, statuses, system objects),
 * openwrt/libubox `blob.h` / `blobmsg.h` (attr header bits, blobmsg types). Reverse maps are derived, never
 * written twice.
 */

/** `enum ubus_msg_type` (ubusmsg.h). */
export const MsgType = {
  HELLO: 0,
  STATUS: 1,
  DATA: 2,
  PING: 3,
  LOOKUP: 4,
  INVOKE: 5,
  ADD_OBJECT: 6,
  REMOVE_OBJECT: 7,
  SUBSCRIBE: 8,
  UNSUBSCRIBE: 9,
  NOTIFY: 10,
  MONITOR: 11,
} as const;
/** `__UBUS_MSG_LAST`: ubusd answers any type >= this (and HELLO/MONITOR) with INVALID_COMMAND. */
export const UBUS_MSG_LAST = 12;

/** `enum ubus_msg_attr` (ubusmsg.h): ids of the plain (non-extended) message attributes. */
export const Attr = {
  UNSPEC: 0,
  STATUS: 1,
  OBJPATH: 2,
  OBJID: 3,
  METHOD: 4,
  OBJTYPE: 5,
  SIGNATURE: 6,
  DATA: 7,
  TARGET: 8,
  ACTIVE: 9,
  NO_REPLY: 10,
  SUBSCRIBERS: 11,
  USER: 12,
  GROUP: 13,
} as const;

/** `enum ubus_monitor_attr` (ubusmsg.h): MONITOR frames reuse the attr ids with these meanings. */
export const MonitorAttr = {
  CLIENT: 0,
  PEER: 1,
  SEND: 2,
  SEQ: 3,
  TYPE: 4,
  DATA: 5,
} as const;

/** `enum ubus_msg_status` (ubusmsg.h). */
export const Status = {
  OK: 0,
  INVALID_COMMAND: 1,
  INVALID_ARGUMENT: 2,
  METHOD_NOT_FOUND: 3,
  NOT_FOUND: 4,
  NO_DATA: 5,
  PERMISSION_DENIED: 6,
  TIMEOUT: 7,
  NOT_SUPPORTED: 8,
  UNKNOWN_ERROR: 9,
  CONNECTION_FAILED: 10,
  NO_MEMORY: 11,
  PARSE_ERROR: 12,
  SYSTEM_ERROR: 13,
} as const;

/** `enum blobmsg_type` (blobmsg.h). BOOL is an alias of INT8 on the wire. */
export const BlobmsgType = {
  UNSPEC: 0,
  ARRAY: 1,
  TABLE: 2,
  STRING: 3,
  INT64: 4,
  INT32: 5,
  INT16: 6,
  INT8: 7,
  BOOL: 7,
  DOUBLE: 8,
} as const;
/** `BLOBMSG_TYPE_LAST`: ids above this are not blobmsg types. */
export const BLOBMSG_TYPE_LAST = 8;

function invert<T extends Record<string, number>>(table: T): ReadonlyMap<number, keyof T & string> {
  const out = new Map<number, keyof T & string>();
  // First name wins, so BlobmsgType 7 reads as INT8 rather than its BOOL alias.
  for (const [name, value] of Object.entries(table)) if (!out.has(value)) out.set(value, name as keyof T & string);
  return out;
}

const msgTypeNames = invert(MsgType);
const statusNames = invert(Status);
const blobmsgTypeNames = invert(BlobmsgType);

export function msgTypeName(n: number): string {
  return msgTypeNames.get(n) ?? `UNKNOWN_${n}`;
}
export function statusName(n: number): string {
  return statusNames.get(n) ?? `UNKNOWN_${n}`;
}
export function blobmsgTypeName(n: number): string {
  return blobmsgTypeNames.get(n) ?? `UNKNOWN_${n}`;
}

/** ubus_common.h / ubusmsg.h limits. */
export const UBUS_MAX_MSGLEN = 1048576;
/** 8-byte message header + the 4-byte header of the top-level blob. */
export const UBUS_HEADER_LEN = 12;
export const UBUS_MSGHDR_LEN = 8;
export const UBUS_SYSTEM_OBJECT_EVENT = 1;
export const UBUS_SYSTEM_OBJECT_ACL = 2;
export const UBUS_SYSTEM_OBJECT_MONITOR = 3;
/** Every random client/object/type id is >= this. */
export const UBUS_SYSTEM_OBJECT_MAX = 1024;
/** ubusd drops messages to a client once this much is queued for it (ubusd.h UBUS_CLIENT_MAX_TXQ_LEN). */
export const UBUS_CLIENT_MAX_TXQ_LEN = UBUS_MAX_MSGLEN;
export const UBUS_DEFAULT_SOCKET = '/var/run/ubus/ubus.sock';

/** libubox blob.h attr header layout. */
export const BLOB_ATTR_EXTENDED = 0x80000000;
export const BLOB_ATTR_ID_MASK = 0x7f000000;
export const BLOB_ATTR_ID_SHIFT = 24;
export const BLOB_ATTR_LEN_MASK = 0x00ffffff;
export const BLOB_ATTR_ALIGN = 4;
