/**
 * The codec's hot paths run ahead of the traffic that would make them hot: a burst of calls (32 purchases at once)
 * is where V8 would otherwise decide to optimize the blobmsg encoder, Buffer's integer writes and the frame decoder,
 * and its compiler threads then take the router's cores while the burst's replies wait for one. Run here, once,
 * with frames of the shapes a daemon's traffic has (an INVOKE with its arguments decoded, a reply's DATA and STATUS,
 * an event sent through ubusd's event object), the decision and the compiling happen at a moment of no traffic.
 * Pure: it encodes and decodes in memory and returns a checksum; nothing is sent, written or logged.
 */
import { MsgType, Status } from './constants.ts';
import { decodeMessage, encodeMessage } from './message.ts';
import { encodeBlobmsgTable, type BlobmsgTable } from './blobmsg.ts';

/** Frames of the shapes a daemon's calls and replies have: a method's arguments, its reply, an event's payload. */
export interface WarmUpSample {
  method: string;
  args: BlobmsgTable;
  reply: BlobmsgTable;
  event: { id: string; data: BlobmsgTable };
}

/**
 * Enough rounds for V8 (Node 20) to optimize the encoder's and decoder's functions with TurboFan (`--trace-opt`: the
 * blob writer's, the blobmsg encoder's and Buffer's by the 100th; 400 cost 3× the CPU for little more): each round is a
 * call's INVOKE decoded, its reply's DATA and STATUS encoded (the STATUS decoded, as ubusd's answer to an event is),
 * and an event encoded.
 */
export const WARM_UP_ROUNDS = 100;

/** Encodes and decodes `rounds` times; returns the bytes it made (a checksum the work cannot be dropped from). */
export function warmUpCodec(sample: WarmUpSample, rounds = WARM_UP_ROUNDS): number {
  let bytes = 0;
  for (let i = 0; i < rounds; i++) {
    const seq = (i % 0xfffe) + 1;
    const invoke = encodeMessage({
      type: MsgType.INVOKE,
      seq,
      peer: 0x1234,
      attrs: { objid: 0x5678, method: sample.method, data: sample.args, user: 'root', group: 'root' },
    });
    const call = decodeMessage(invoke);
    const body = encodeBlobmsgTable(sample.reply);
    const data = encodeMessage({
      type: MsgType.DATA,
      seq: call.seq,
      peer: call.peer,
      attrs: { objid: call.attrs.objid ?? 0, dataRaw: body },
    });
    const status = encodeMessage({
      type: MsgType.STATUS,
      seq: call.seq,
      peer: call.peer,
      attrs: { status: Status.OK, objid: call.attrs.objid ?? 0 },
    });
    const event = encodeMessage({
      type: MsgType.INVOKE,
      seq,
      peer: 1,
      attrs: { objid: 1, method: 'send', data: { id: sample.event.id, data: sample.event.data } },
    });
    bytes += invoke.length + data.length + event.length + (decodeMessage(status).attrs.status ?? 0);
  }
  return bytes;
}
