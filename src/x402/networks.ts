/**
 * x402 networks and the EIP-712 domains of the tokens sluice knows. x402 v1 names networks (`base`), v2 uses CAIP-2
 * (`eip155:8453`); sluice accepts both and stores CAIP-2. The token table exists because a USDC domain's `name`
 * differs between Base ("USD Coin") and Base Sepolia ("USDC"): a signature made for the wrong one never settles.
 */

/** x402 v1 network names of EVM chains → chain id. */
const V1_NAMES: Readonly<Record<string, number>> = {
  base: 8453,
  'base-sepolia': 84532,
  ethereum: 1,
  sepolia: 11155111,
  polygon: 137,
  'polygon-amoy': 80002,
  avalanche: 43114,
  'avalanche-fuji': 43113,
  optimism: 10,
  'optimism-sepolia': 11155420,
  arbitrum: 42161,
  'arbitrum-sepolia': 421614,
};

/** `eip155:N` or a v1 name → the chain id; null for anything else (not an EVM network sluice can check). */
export function chainIdOf(network: string): number | null {
  const m = /^eip155:([1-9][0-9]{0,15})$/.exec(network);
  if (m) {
    const id = Number(m[1]);
    return Number.isSafeInteger(id) ? id : null;
  }
  return Object.prototype.hasOwnProperty.call(V1_NAMES, network) ? (V1_NAMES[network] ?? null) : null;
}

/** The CAIP-2 form (`eip155:8453`) of a network name in either form; null when unknown. */
export function toCaip2(network: string): string | null {
  const id = chainIdOf(network);
  return id === null ? null : `eip155:${id}`;
}

/** The v1 name of a CAIP-2 network, when it has one (for v1 payloads sent back to a v1 facilitator). */
export function v1NameOf(caip2: string): string | null {
  const id = chainIdOf(caip2);
  for (const [name, n] of Object.entries(V1_NAMES)) if (n === id) return name;
  return null;
}

/**
 * Public JSON-RPC endpoints of the networks sluice knows, used only to read (eth_call of authorizationState, blocks,
 * eth_getLogs) when a settle's answer was lost: the default of `x402.rpc_url`, so that a default install proves such
 * a payment from the chain by itself. Base's own rate-limited public endpoints (docs.base.org, "Network
 * information"): enough for the few reads a lost answer costs, not for production traffic of other kinds.
 */
export const DEFAULT_RPC_URLS: Readonly<Record<string, string>> = {
  'eip155:8453': 'https://mainnet.base.org',
  'eip155:84532': 'https://sepolia.base.org',
};

/**
 * The default read-only JSON-RPC URL of a CAIP-2 network; '' when sluice knows none. `table`: tests point it at anvil.
 */
export function defaultRpcUrl(caip2: string, table: Readonly<Record<string, string>> = DEFAULT_RPC_URLS): string {
  return Object.prototype.hasOwnProperty.call(table, caip2) ? (table[caip2] ?? '') : '';
}

export interface TokenDomain {
  name: string;
  version: string;
}

/** EIP-712 domains of tokens on networks sluice knows (lower-case address). Checked against the tokens' own name(). */
const KNOWN_TOKENS: Readonly<Record<string, Readonly<Record<string, TokenDomain>>>> = {
  'eip155:8453': { '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913': { name: 'USD Coin', version: '2' } },
  'eip155:84532': { '0x036cbd53842c5426634e7929541ec2318f3dcf7e': { name: 'USDC', version: '2' } },
};

export function knownTokenDomain(caip2: string, asset: string): TokenDomain | null {
  return KNOWN_TOKENS[caip2]?.[asset.toLowerCase()] ?? null;
}
