/**
 * RADIUS as a leaf library: the packet codec and attribute dictionary (RFC 2865/2866/5176 and the vendor attributes
 * sluice reads), the UDP client, what a request says about the NAS, the Disconnect/CoA listener with the reading of
 * its requests, and THE reading of a speed tier's attributes (rate-attributes.ts). Nothing here knows sessions or
 * config; src/upstream/radius/ and src/payments/voucher/voucher.ts adapt it.
 */
export {
  AttributeReader,
  CODE,
  RadiusPacketError,
  encodeRequest,
  splitOctets,
  type AttributeInput,
  type RadiusPacket,
} from './packet.ts';
export { TERMINATE_CAUSE } from './dictionary.ts';
export { RadiusClient } from './client.ts';
export { localAddressToward, nasAttributes, rfc3580Mac, type NasIdentity } from './nas.ts';
export { dasAck, dasNak, readDasRequest, type DasAnswer } from './das.ts';
export { DasServer } from './das-server.ts';
export { readRateAttributes, type RateDirection } from './rate-attributes.ts';
