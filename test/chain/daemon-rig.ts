/**
 * One rig for "the real daemon on a chain", which the LAN endpoint's tests (x402-http, batch-settlement-http,
 * upto-daemon) and the pay page's batch lab (batch-lab.ts) each used to build by hand: anvil as eip155:84532 with a
 * USDC (EIP-3009, 6 decimals, EIP-712 domain "USDC"/"2"), the contracts a scheme needs, @x402's facilitator on it,
 * and the daemon (DaemonLab, its portal over the control socket, 0.3 s polls) with the LAN endpoint on a free port,
 * the LAN callers already portal clients. What differs per test is data: the contracts, the facilitator's options,
 * the config sections. startChainFacilitator is the same without the daemon.
 */
import type { Address } from 'viem';
import { startChain, type TestChain, type TestToken } from './index.ts';
import { startFacilitator, type FacilitatorOptions, type TestFacilitator } from './facilitator.ts';
import { startHoldingProxy, type HoldingProxy } from './holding-proxy.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection } from '../helpers/uci-sections.ts';

export const RIG_CHAIN_ID = 84532;
export const RIG_NETWORK = `eip155:${RIG_CHAIN_ID}`;

/** What the config is written from. */
export interface RigParts<D> {
  chain: TestChain;
  usdc: TestToken;
  /** What `deploy` returned. */
  deployed: D;
  facilitator: TestFacilitator;
  /** With `holdingProxy`: in front of the facilitator, its URL the one to configure where a test holds a /settle. */
  proxy: HoldingProxy | undefined;
}

export interface ChainFacilitatorOptions<D> {
  /** The scheme's contracts beyond the token (deployBatchStack, deployUptoStack), deployed before the facilitator. */
  deploy?: (chain: TestChain) => Promise<D>;
  /** The facilitator's options, given the chain (a batch facilitator's authorizer is a chain account). */
  facilitator?: (chain: TestChain) => FacilitatorOptions;
  /** A holding proxy (holding-proxy.ts) in front of the facilitator. */
  holdingProxy?: boolean;
}

export interface ChainFacilitator<D> extends RigParts<D> {
  /** Stops the proxy, the facilitator, then the chain. */
  close(): Promise<void>;
}

/** The chain half of the rig, for tests that drive src/ in-process against a real facilitator (no daemon). */
export async function startChainFacilitator<D = undefined>(
  o: ChainFacilitatorOptions<D>,
): Promise<ChainFacilitator<D>> {
  const chain = await startChain({ chainId: RIG_CHAIN_ID });
  let facilitator: TestFacilitator | undefined;
  let proxy: HoldingProxy | undefined;
  const close = async (): Promise<void> => {
    await proxy?.close();
    await facilitator?.stop();
    await chain.stop();
  };
  try {
    const usdc = await chain.deployToken({ name: 'USDC', version: '2' });
    const deployed = (o.deploy ? await o.deploy(chain) : undefined) as D;
    facilitator = await startFacilitator(chain, o.facilitator?.(chain) ?? {});
    if (o.holdingProxy) proxy = await startHoldingProxy(facilitator.url);
    return { chain, usdc, deployed, facilitator, proxy, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}

export interface ChainDaemonOptions<D> extends ChainFacilitatorOptions<D> {
  /** Every section but the LAN endpoint's `http`, which the rig adds (its port is the rig's). */
  config: (parts: RigParts<D>) => string | Promise<string>;
  /** The `http` section's rate_limit; the daemon's default when absent. */
  rateLimit?: number;
  /**
   * Portal clients added before the daemon starts, MAC → IP: the LAN callers (the endpoint serves portal clients only).
   */
  clients?: Record<string, string>;
  /** The lab's checkpoint_interval (s); the lab's default when absent. */
  checkpointInterval?: number;
}

export interface ChainDaemon<D> extends RigParts<D> {
  lab: DaemonLab;
  port: number;
  /** The LAN endpoint, http://127.0.0.1:port */
  base: string;
  /** Stops the daemon, then the proxy, the facilitator and the chain (the reverse of the start). */
  close(): Promise<void>;
}

export async function startChainDaemon<D = undefined>(o: ChainDaemonOptions<D>): Promise<ChainDaemon<D>> {
  const parts = await startChainFacilitator(o);
  let lab: DaemonLab | undefined;
  // A step that fails stops what the earlier steps started: a test's after hook never sees a half-made rig.
  const close = async (): Promise<void> => {
    await lab?.close();
    await parts.close();
  };
  try {
    const port = await freePort();
    const config = await o.config(parts);
    lab = await DaemonLab.create({
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: config + httpSection(port, o.rateLimit),
      ...(o.checkpointInterval !== undefined && { checkpointInterval: o.checkpointInterval }),
    });
    for (const [mac, ip] of Object.entries(o.clients ?? {})) lab.portal.addClient(mac, ip);
    await lab.startDaemon();
    const { chain, usdc, deployed, facilitator, proxy } = parts;
    return { chain, usdc, deployed, facilitator, proxy, lab, port, base: `http://127.0.0.1:${port}`, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}

/** The facilitator's advertised receiverAuthorizer for batch-settlement (GET /supported), as a server configures it. */
export async function receiverAuthorizer(facilitator: TestFacilitator): Promise<Address> {
  const s = (await (await fetch(`${facilitator.url}/supported`)).json()) as {
    kinds: Array<{ scheme: string; extra?: { receiverAuthorizer?: Address } }>;
  };
  const kind = s.kinds.find((k) => k.scheme === 'batch-settlement');
  if (!kind?.extra?.receiverAuthorizer) throw new Error('no receiverAuthorizer in /supported');
  return kind.extra.receiverAuthorizer;
}
