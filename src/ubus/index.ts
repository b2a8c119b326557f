/** The ubus library: wire codec, client (calls, events, subscriptions, serving objects), CLI and embedded broker. */
export {
  Attr, BlobmsgType, MsgType, Status, UBUS_DEFAULT_SOCKET, UBUS_HEADER_LEN, UBUS_MAX_MSGLEN, UbusCodecError,
  decodeBlobmsgNodes, decodeBlobmsgTable, decodeHeader, decodeMessage, encodeBlobmsgNodes, encodeBlobmsgTable,
  encodeMessage, statusName,
} from './codec/index.ts';
export type {
  BlobmsgNode, BlobmsgPolicy, BlobmsgTable, BlobmsgValue, UbusAttrs, UbusHeader, UbusMessage, UbusSignature,
} from './codec/index.ts';
export { UbusClient } from './client.ts';
export type {
  ReconnectOptions, UbusCallOptions, UbusClientOptions, UbusClientState, UbusObjectInfo, UbusRemovable,
} from './client.ts';
export { restrictToPolicy, signatureOf } from './server.ts';
export type { UbusMethodDef, UbusObjectDef, UbusObjectHandle, UbusReply, UbusRequestContext } from './server.ts';
export { UbusError, UbusStatusError, statusText } from './errors.ts';
export type { UbusErrorCode } from './errors.ts';
export { runUbusCli } from './cli.ts';
export type { UbusCliIo } from './cli.ts';
export { UbusBroker, runUbusd } from './broker/index.ts';
export type { RunUbusdIo, UbusBrokerOptions } from './broker/index.ts';
