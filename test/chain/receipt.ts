/**
 * A receipt wait that asks for the receipt itself every `pollMs`, for the test chain's clients.
 *
 * viem's waitForTransactionReceipt asks once per new block, and a block that arrives while it is still looking through
 * the previous one for a replacement transaction is skipped (its `retrying` flag, viem 2.57). On anvil's automine no
 * further block comes after the one that mined the transaction, so the wait runs out its 180 s: CI's
 * batch-settlement-chain before hook did, on a deploy anvil had mined.
 */
import { TransactionReceiptNotFoundError, type Hash, type PublicClient, type TransactionReceipt } from 'viem';

export class ReceiptTimeoutError extends Error {
  readonly code = 'ERR_TEST_RECEIPT_TIMEOUT';
  constructor(
    readonly hash: Hash,
    readonly ms: number,
  ) {
    super(`no receipt for ${hash} after ${ms} ms`);
  }
}

export interface ReceiptWait {
  hash: Hash;
  /** ms; viem's `timeout` (default here 60 s: a local chain mines at once). */
  timeout?: number;
  pollingInterval?: number;
}

export async function receiptOf(
  client: Pick<PublicClient, 'getTransactionReceipt'>,
  { hash, timeout = 60_000, pollingInterval = 50 }: ReceiptWait,
): Promise<TransactionReceipt> {
  const began = Date.now();
  for (;;) {
    try {
      return await client.getTransactionReceipt({ hash });
    } catch (err) {
      if (!(err instanceof TransactionReceiptNotFoundError)) throw err;
    }
    if (Date.now() - began >= timeout) throw new ReceiptTimeoutError(hash, Date.now() - began);
    await new Promise((r) => setTimeout(r, pollingInterval));
  }
}
