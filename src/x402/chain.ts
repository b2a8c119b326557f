/**
 * The few reads sluice makes of an EVM chain over JSON-RPC (x402.rpc_url), for resolving a settle whose answer was
 * lost: an eth_call of the token's authorizationState, block headers (number, timestamp) and filtered eth_getLogs.
 * Every failure (no answer, an RPC error object, a malformed result) is ERR_X402_RPC_UNAVAILABLE: the caller keeps
 * the purchase pending and asks again later; nothing here decides anything.
 */
import { SluiceError } from '../errors.ts';
import { jsonClient } from './http-json.ts';

/** A log as eth_getLogs returns it (quantities hex-encoded). */
export interface ChainLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: bigint;
  transactionHash: string;
  logIndex: bigint;
  /** Dropped by a reorg (eth_getLogs on a filter can say so). */
  removed: boolean;
}

export interface BlockHeader {
  number: bigint;
  /** Unix seconds. */
  timestamp: bigint;
}

export interface LogFilter {
  address: string;
  /** Per position: one topic, any of several, or null for any. */
  topics: Array<string | string[] | null>;
  fromBlock: bigint;
  toBlock: bigint;
}

/** What the resolver needs from the chain; the JSON-RPC client below, or a double in tests. */
export interface ChainReader {
  /** The token's authorizationState(authorizer, nonce): true once the nonce was used or canceled. */
  authorizationState(token: string, authorizer: string, nonce: string): Promise<boolean>;
  /** The latest block (null: that block). */
  block(number: bigint | null): Promise<BlockHeader>;
  logs(filter: LogFilter): Promise<ChainLog[]>;
}

const AUTHORIZATION_STATE_SELECTOR = '0xe94a0102'; // authorizationState(address,bytes32)
const HEX_WORD = /^0x[0-9a-f]{64}$/i;
const QUANTITY = /^0x[0-9a-f]{1,64}$/i;

/** A 20-byte address as a 32-byte topic or ABI word. */
export function addressWord(address: string): string {
  return `0x${address.slice(2).toLowerCase().padStart(64, '0')}`;
}

const hex = (n: bigint): string => `0x${n.toString(16)}`;

function unavailable(message: string): SluiceError {
  return new SluiceError('ERR_X402_RPC_UNAVAILABLE', `x402 rpc_url: ${message}`);
}

function quantity(v: unknown, what: string): bigint {
  if (typeof v !== 'string' || !QUANTITY.test(v)) throw unavailable(`${what} is not a quantity`);
  return BigInt(v);
}

function logOf(v: unknown): ChainLog {
  const r = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const topics = Array.isArray(r.topics) ? r.topics : null;
  if (
    typeof r.address !== 'string' ||
    !topics ||
    !topics.every((t) => typeof t === 'string' && HEX_WORD.test(t)) ||
    typeof r.data !== 'string' ||
    typeof r.transactionHash !== 'string'
  )
    throw unavailable('a log without address, topics, data or transactionHash');
  return {
    address: r.address.toLowerCase(),
    topics: (topics as string[]).map((t) => t.toLowerCase()),
    data: r.data.toLowerCase(),
    blockNumber: quantity(r.blockNumber, 'log blockNumber'),
    transactionHash: r.transactionHash.toLowerCase(),
    logIndex: quantity(r.logIndex, 'log logIndex'),
    removed: r.removed === true,
  };
}

/**
 * The longest JSON-RPC answer read. The largest is eth_getLogs over MAX_LOG_BLOCK_RANGE blocks filtered by the
 * authorizer and nonce topics (a log is ~600 bytes of JSON, and those filters match a handful): 1 MiB is far above
 * any honest answer, and bounds what a hostile or broken endpoint can make the router hold.
 */
export const MAX_RPC_ANSWER_BYTES = 1_048_576;

export interface RpcReaderOptions {
  url: string;
  /** One JSON-RPC exchange, body included. */
  timeoutMs: number;
  /** Ends the lookups in flight (the payment method closing). */
  signal?: AbortSignal;
}

/** A ChainReader over JSON-RPC 2.0 (POST to the URL as configured, bounded answer, no redirects). */
export function rpcReader(options: RpcReaderOptions): ChainReader {
  const post = jsonClient({ ...options, maxBytes: MAX_RPC_ANSWER_BYTES });
  let id = 0;
  async function call(method: string, params: unknown[]): Promise<unknown> {
    const a = await post('POST', '', { jsonrpc: '2.0', id: ++id, method, params });
    if (a.kind === 'none') throw unavailable(`${method}: ${a.message}`);
    const error = a.body.error as { message?: unknown } | undefined;
    if (error !== undefined)
      throw unavailable(`${method}: ${typeof error?.message === 'string' ? error.message.slice(0, 200) : 'error'}`);
    if (a.status !== 200 || !('result' in a.body)) throw unavailable(`${method}: HTTP ${a.status} without a result`);
    return a.body.result;
  }
  return {
    async authorizationState(token, authorizer, nonce) {
      const data = `${AUTHORIZATION_STATE_SELECTOR}${addressWord(authorizer).slice(2)}${nonce.slice(2)}`;
      const result = await call('eth_call', [{ to: token, data }, 'latest']);
      if (typeof result !== 'string' || !HEX_WORD.test(result))
        throw unavailable('authorizationState did not return one word');
      return BigInt(result) !== 0n;
    },
    async block(number) {
      const result = await call('eth_getBlockByNumber', [number === null ? 'latest' : hex(number), false]);
      if (typeof result !== 'object' || result === null) throw unavailable(`block ${number ?? 'latest'} not found`);
      const b = result as Record<string, unknown>;
      return { number: quantity(b.number, 'block number'), timestamp: quantity(b.timestamp, 'block timestamp') };
    },
    async logs(filter) {
      const result = await call('eth_getLogs', [
        {
          address: filter.address,
          topics: filter.topics,
          fromBlock: hex(filter.fromBlock),
          toBlock: hex(filter.toBlock),
        },
      ]);
      if (!Array.isArray(result)) throw unavailable('eth_getLogs did not return a list');
      return result.map(logOf);
    },
  };
}
