/** What the collector keeps of a refused message: a sample to show, and the digest that makes its copies one. */
import { createHash } from 'node:crypto';

/** The start of a refused payload, as text when it is printable (only printable bytes: no NUL reaches the database). */
export function sampleOf(payload: Buffer): string {
  const head = payload.subarray(0, 200);
  const printable = head.every((b) => b >= 0x20 && b < 0x7f);
  return printable ? head.toString('latin1') : payload.subarray(0, 100).toString('hex');
}

/** What makes two deliveries the same refused message: its topic and payload. */
export const digestOf = (topic: string, payload: Buffer): Buffer =>
  createHash('sha256').update(topic).update('\n').update(payload).digest();
