/**
 * What the two tests of `batch-settlement` on the LAN endpoint share (batch-settlement-http, batch-deposit-crash):
 * the plan's figures, the customer's and a stranger's devices, and the calls they make on the endpoint and the chain.
 */
import { request } from 'node:http';
import type { Hex } from 'viem';
import { BATCH_SETTLEMENT_ADDRESS, type BatchStack } from '../chain/batch.ts';
import type { TestChain } from '../chain/index.ts';

export const STEP_PRICE = 10_000n;
export const STEPS = 10n;
export const PRICE = STEPS * STEP_PRICE;
/** @x402/evm's client deposits 5 × the request by default (depositMultiplier). */
export const DEPOSIT = 5n * PRICE;
export const FUNDS = 5_000_000n;
export const MAC = '02:00:00:00:0c:01';
/** Another device on the same WiFi (a loopback address of its own: the LAN endpoint sees it as another client). */
export const STRANGER_MAC = '02:00:00:00:0c:66';
export const STRANGER_IP = '127.0.0.2';

export interface LanAnswer {
  status: number;
  headers: Record<string, unknown>;
  body: Record<string, unknown>;
}

/** GET `path` of the endpoint at `base` (a POST of `post` as JSON when given), from `localAddress` when given. */
export function lanRequest(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  post?: unknown,
  localAddress?: string,
): Promise<LanAnswer> {
  return new Promise<LanAnswer>((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        agent: false,
        headers: { ...headers, ...(post !== undefined && { 'content-type': 'application/json' }) },
        method: post === undefined ? 'GET' : 'POST',
        ...(localAddress && { localAddress }),
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(post === undefined ? undefined : JSON.stringify(post));
  });
}

/** An x402 header (PAYMENT-REQUIRED, PAYMENT-SIGNATURE): base64 JSON. */
export function decodeHeader(header: unknown): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(header), 'base64').toString()) as Record<string, unknown>;
}

/** [balance, totalClaimed] of a channel on chain. */
export async function channelOnChain(chain: TestChain, stack: BatchStack, id: Hex): Promise<[bigint, bigint]> {
  const [balance, totalClaimed] = (await chain.publicClient.readContract({
    address: BATCH_SETTLEMENT_ADDRESS,
    abi: stack.abi,
    functionName: 'channels',
    args: [id],
  })) as [bigint, bigint];
  return [balance, totalClaimed];
}
