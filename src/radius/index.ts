/**
 * RADIUS as a leaf library: the packet codec and attribute dictionary (RFC 2865/2866/5176 and the vendor attributes
 * sluice reads), the UDP client, what a request says about the NAS, and the Disconnect/CoA listener with the reading of
 * its requests. Nothing here knows sessions or config; src/upstream/radius/ and src/payments/voucher/voucher.ts adapt it.
 */
export {
  AttributeReader, CODE, HEADER_LENGTH, MAX_OCTET_LIMIT, MAX_PACKET_LENGTH, RadiusPacketError, codeName, decodePacket, decryptPassword,
  encodeAttributes, encodeRequest, encodeResponse, encryptPassword, equalConstantTime, splitOctets, verifyRequest,
  verifyResponse,
  type AttributeInput, type AttributeValue, type CodeName, type EncodeRequestOptions, type RadiusPacket, type RawAttribute,
} from './packet.ts';
export {
  ACCT_STATUS, ATTRIBUTES, ERROR_CAUSE, TERMINATE_CAUSE, VENDOR_CHILLISPOT, VENDOR_MIKROTIK, VENDOR_SPECIFIC, VENDOR_WISPR,
  attributeByCode, attributeByName, type AttributeDef, type AttributeKind, type AttributeName,
} from './dictionary.ts';
export { RadiusClient, type Attempt, type RadiusClientOptions, type RadiusClientStats, type RadiusServer } from './client.ts';
export { localAddressToward, macFromStationId, nasAttributes, rfc3580Mac, type NasIdentity } from './nas.ts';
export { dasAck, dasNak, readDasRequest, type DasAnswer, type DasNas, type DasRequest } from './das.ts';
export { DasServer, type DasClient, type DasServerOptions, type DasStats } from './das-server.ts';
