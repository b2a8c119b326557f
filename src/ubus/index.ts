/**
 * The ubus library: wire codec, client (calls, events, subscriptions, serving objects), CLI. The embedded broker
 * (broker/index.ts) is imported from its own folder by the two that run it, `sluice ubusd` and the demo: exported here,
 * the daemon's start would load it (esbuild's splitting puts a module where every importer reaches it).
 */
export { BlobmsgType, Status, UBUS_MAX_MSGLEN, encodeBlobmsgTable } from './codec/index.ts';
export type { BlobmsgTable, BlobmsgValue } from './codec/index.ts';
export { UbusClient } from './client.ts';
export type { UbusObjectDef, UbusObjectHandle, UbusReply, UbusRequestContext } from './server.ts';
export { UbusStatusError } from './errors.ts';
export { warmUpCodec, WARM_UP_ROUNDS } from './codec/warm-up.ts';
export type { WarmUpSample } from './codec/warm-up.ts';
export { runUbusCli } from './cli.ts';
