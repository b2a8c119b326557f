/** The ubus library: wire codec, client (calls, events, subscriptions, serving objects), CLI and embedded broker. */
export { BlobmsgType, Status, UBUS_MAX_MSGLEN, encodeBlobmsgTable } from './codec/index.ts';
export type { BlobmsgTable, BlobmsgValue } from './codec/index.ts';
export { UbusClient } from './client.ts';
export type { UbusObjectDef, UbusObjectHandle, UbusReply } from './server.ts';
export { UbusStatusError } from './errors.ts';
export { runUbusCli } from './cli.ts';
export { UbusBroker, runUbusd } from './broker/index.ts';
