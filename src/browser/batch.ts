/**
 * The pay page's side of x402 `batch-settlement` (docs/batch-settlement.md "The customer's side"), bundled
 * for the browser by scripts/build.mjs into portal/batch.js as `SluiceBatchClient`. It reuses @x402/evm's own client
 * functions (the deposit payload, the voucher, the channel id), so the page signs exactly what @x402/evm's client
 * signs; what it adds is the page's own voucher key (the channel's `payerAuthorizer`): the wallet signs the deposit
 * once, this key every voucher after, and it stays in the browser's storage for the channel's life, so a customer
 * whose captive-portal window closed can still top up and ask for the refund without the wallet.
 * Browser only: nothing in src/ imports this file.
 */
import {
  computeChannelId,
  createBatchSettlementEIP3009DepositPayload,
  signVoucher,
} from '@x402/evm/batch-settlement/client';
import { getAddress } from 'viem';
import { generatePrivateKey, privateKeyToAddress, signTypedData } from 'viem/accounts';

type Hex = `0x${string}`;
type Requirements = {
  scheme: string;
  network: string;
  asset: string;
  amount: string;
  payTo: string;
  maxTimeoutSeconds: number;
  extra?: Record<string, unknown>;
};
/** An EIP-1193 provider (window.ethereum). */
type Provider = { request(args: { method: string; params?: unknown[] }): Promise<unknown> };
export interface ChannelConfig {
  payer: Hex;
  payerAuthorizer: Hex;
  receiver: Hex;
  receiverAuthorizer: Hex;
  token: Hex;
  withdrawDelay: number;
  salt: Hex;
}

/** A fresh voucher key (32 random bytes from crypto.getRandomValues, as viem does). */
export function newVoucherKey(): Hex {
  return generatePrivateKey();
}

export function addressOf(key: Hex): Hex {
  return privateKeyToAddress(key);
}

/**
 * The voucher key as the signer @x402/evm's functions take: only typed-data signing (viem's privateKeyToAccount would
 * bring transaction serializers the page never uses, a third of the bundle).
 */
function keySigner(privateKey: Hex) {
  return {
    address: addressOf(privateKey),
    signTypedData: (data: Record<string, unknown>) => signTypedData({ ...data, privateKey } as never),
  };
}

/**
 * The channel the offer asks for between `payer` and this router, vouchers signed by `voucherKey`. The page draws a
 * random `salt` per channel (kept with the key): its channel id cannot be guessed from the payer's address.
 */
export function channelConfig(req: Requirements, payer: string, voucherKey: Hex, salt: Hex): ChannelConfig {
  const extra = req.extra ?? {};
  return {
    payer: getAddress(payer),
    payerAuthorizer: addressOf(voucherKey),
    receiver: getAddress(req.payTo),
    receiverAuthorizer: getAddress(String(extra.receiverAuthorizer)),
    token: getAddress(req.asset),
    withdrawDelay: Number(extra.withdrawDelay),
    salt,
  };
}

export function channelIdOf(config: ChannelConfig, network: string): Hex {
  return computeChannelId(config as never, network).toLowerCase() as Hex;
}

/** eth_signTypedData_v4 wants the domain's own type list and numbers as strings (JSON has no bigint). */
function walletSigner(provider: Provider, address: Hex) {
  const DOMAIN_FIELDS = [
    ['name', 'string'],
    ['version', 'string'],
    ['chainId', 'uint256'],
    ['verifyingContract', 'address'],
  ] as const;
  return {
    address,
    async signTypedData(data: {
      domain: Record<string, unknown>;
      types: Record<string, unknown>;
      primaryType: string;
      message: Record<string, unknown>;
    }): Promise<Hex> {
      const EIP712Domain = DOMAIN_FIELDS.filter(([name]) => data.domain[name] !== undefined).map(([name, type]) => ({
        name,
        type,
      }));
      const json = JSON.stringify({ ...data, types: { EIP712Domain, ...data.types } }, (_k, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v,
      );
      return (await provider.request({ method: 'eth_signTypedData_v4', params: [address, json] })) as Hex;
    },
  };
}

function envelope(req: Requirements, resource: unknown, payload: unknown) {
  return { x402Version: 2, ...(resource !== undefined && { resource }), accepted: req, payload };
}

/**
 * The first payment into a channel (or more money into it): the wallet signs the deposit (ERC-3009
 * ReceiveWithAuthorization, the one wallet prompt), the voucher key the voucher for `ceiling`.
 */
export async function depositPayment(
  provider: Provider,
  req: Requirements,
  resource: unknown,
  config: ChannelConfig,
  deposit: string,
  ceiling: string,
  voucherKey: Hex,
) {
  const r = await createBatchSettlementEIP3009DepositPayload(
    walletSigner(provider, config.payer) as never,
    2,
    req as never,
    config as never,
    deposit,
    ceiling,
    keySigner(voucherKey) as never,
  );
  return envelope(req, resource, r.payload);
}

/** A payment by a voucher alone (money already in the channel): no wallet. */
export async function voucherPayment(
  req: Requirements,
  resource: unknown,
  config: ChannelConfig,
  ceiling: string,
  voucherKey: Hex,
) {
  const voucher = await signVoucher(
    keySigner(voucherKey) as never,
    channelIdOf(config, req.network),
    ceiling,
    req.network,
  );
  return envelope(req, resource, { type: 'voucher', channelConfig: config, voucher });
}

/** The spec's cooperative refund request (as @x402/evm's refundChannel builds it): a voucher at the charged amount. */
export async function refundPayment(
  req: Requirements,
  resource: unknown,
  config: ChannelConfig,
  charged: string,
  voucherKey: Hex,
) {
  const voucher = await signVoucher(
    keySigner(voucherKey) as never,
    channelIdOf(config, req.network),
    charged,
    req.network,
  );
  return envelope(req, resource, { type: 'refund', channelConfig: config, voucher });
}
