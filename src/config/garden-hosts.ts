/**
 * The walled garden's hosts as a running config opens them: the operator's list (walled-garden.ts) and what each
 * enabled payment method's customers reach before they pay. Pure.
 */
import type { Config } from './types.ts';

/** A URL's host when it is a name (an address literal needs no resolving and is added as is by its caller). */
function urlHost(url: string): string | undefined {
  try {
    const host = new URL(url).hostname.toLowerCase();
    return host === '' ? undefined : host;
  } catch {
    return undefined;
  }
}

/**
 * Every host the garden opens: the operator's list, then what each enabled payment method's customers need before
 * they can pay — the Cashu mints (a wallet melts or swaps there, a Lightning payer's wallet reaches it through the
 * invoice), and an x402 RPC URL set by the operator (`x402.rpc_url`: the customer's wallet reads the chain there).
 * The x402 facilitator never: the router talks to it, not the client.
 */
export function walledGardenHosts(config: Pick<Config, 'main' | 'tollgate' | 'x402'>): string[] {
  const hosts = new Set(config.main.walledGarden.hosts);
  for (const mint of config.tollgate?.mints ?? []) {
    const host = urlHost(mint);
    if (host !== undefined) hosts.add(host);
  }
  if (config.x402.enabled && config.x402.rpcUrlSource === 'option') {
    const host = urlHost(config.x402.rpcUrl);
    if (host !== undefined) hosts.add(host);
  }
  return [...hosts];
}
