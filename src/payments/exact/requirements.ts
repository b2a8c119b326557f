/**
 * What the `exact` scheme offers and what it asks the facilitator: the PaymentRequirements of a 402 answer, and the
 * /verify and /settle request for a payment, whose requirements match its authorization exactly (x402 needs value =
 * amount). Pure: the config, the payment and the token's EIP-712 domain in, the JSON out.
 */
import type { X402Config } from '../../config/index.ts';
import {
  v1NameOf,
  type Address,
  type ExactPayment,
  type FacilitatorRequest,
  type TokenDomain,
} from '../../x402/index.ts';
import type { Quote } from '../types.ts';

/** The x402 v2 PaymentRequirements offering `quote` (what a 402 answer's `accepts` lists). */
export function exactRequirements(config: X402Config, quote: Quote, domain: TokenDomain): Record<string, unknown> {
  return {
    scheme: 'exact',
    network: config.network,
    amount: quote.price.toString(),
    asset: quote.asset.toLowerCase(),
    payTo: config.payTo,
    maxTimeoutSeconds: config.maxTimeoutSeconds,
    extra: { name: domain.name, version: domain.version },
  };
}

/** The facilitator request for a payment, in the payment's own x402 version. */
export function facilitatorRequest(
  config: X402Config,
  p: ExactPayment,
  asset: Address,
  domain: TokenDomain,
): FacilitatorRequest {
  const a = p.authorization;
  const extra = { name: domain.name, version: domain.version };
  const paymentRequirements: Record<string, unknown> =
    p.x402Version === 2
      ? {
          scheme: 'exact',
          network: config.network,
          amount: a.value.toString(),
          asset,
          payTo: config.payTo,
          maxTimeoutSeconds: config.maxTimeoutSeconds,
          extra,
        }
      : {
          scheme: 'exact',
          network: v1NameOf(config.network) ?? config.network,
          maxAmountRequired: a.value.toString(),
          resource: 'sluice:purchase',
          description: 'WiFi access',
          mimeType: 'application/json',
          payTo: config.payTo,
          maxTimeoutSeconds: config.maxTimeoutSeconds,
          asset,
          extra,
        };
  return { x402Version: p.x402Version, paymentPayload: p.raw, paymentRequirements };
}
