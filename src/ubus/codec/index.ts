export * from './constants.ts';
export { UbusCodecError } from './error.ts';
export { BlobWriter, pad4, readBlobAttrs } from './blob.ts';
export type { BlobAttrView } from './blob.ts';
export {
  asU32,
  autoBlobmsgType,
  decodeBlobmsgArray,
  decodeBlobmsgNodes,
  decodeBlobmsgTable,
  encodeBlobmsgArray,
  encodeBlobmsgNodes,
  encodeBlobmsgTable,
  nodeToValue,
  nodesToTable,
  tryDecodeBlobmsgNodes,
} from './blobmsg.ts';
export type { BlobmsgNode, BlobmsgPolicy, BlobmsgScalar, BlobmsgTable, BlobmsgValue } from './blobmsg.ts';
export {
  decodeHeader,
  decodeMessage,
  decodeMonitor,
  encodeMessage,
  encodeMonitorAttrs,
  encodeSignature,
} from './message.ts';
export type {
  DecodeOptions,
  UbusAttrs,
  UbusHeader,
  UbusMessage,
  UbusMonitorRecord,
  UbusRawAttr,
  UbusSignature,
} from './message.ts';
export { UbusFrameReader } from './framer.ts';
