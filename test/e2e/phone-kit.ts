/**
 * What the phone scenarios (phone.test.ts, phone-restore.test.ts) share: the lab with openNDS showing sluice's splash,
 * anvil and @x402/evm's facilitator brought into the router's namespace, the daemon selling the lab's plans by x402
 * (and batch-settlement when asked), and a customer's moves on the pay page (arrive, choose a plan, read the message).
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Address } from 'viem';
import { startChain, type TestChain, type TestToken } from '../chain/index.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { deployBatchStack } from '../chain/batch.ts';
import { x402Section } from '../helpers/uci-sections.ts';
import { Lab, ROUTER_LAN_IP, UPSTREAM_IP } from './lab.ts';
import { LAB_PORTAL, figure, prerequisites, dumpLogs } from './scenario.ts';
import { Sluice } from './sluice.ts';
import { browserUnavailableReason, type Page } from './browser.ts';
import { relayIntoRouter, type Relay } from './relay.ts';

export const PAY_PAGE = `${ROUTER_LAN_IP}:2122`;
export const CHAIN_ID = 84532;
export const PHONE = { width: 390, height: 844, mobile: true };
export const PRICE_PER_MINUTE = 1000n; // the lab's time plan: 0.001 USDC per 60 s step

/** Why the phone scenarios cannot run here, or null. */
export function phoneSkipReason(): string | null {
  const pre = prerequisites();
  return (
    pre.daemon ?? (LAB_PORTAL !== 'opennds' ? "the ThemeSpec splash is openNDS's" : null) ?? browserUnavailableReason()
  );
}

const portOf = (url: string): number => Number(new URL(url).port);

async function receiverAuthorizer(url: string): Promise<Address> {
  const s = (await (await fetch(`${url}/supported`)).json()) as {
    kinds: Array<{ scheme: string; extra?: { receiverAuthorizer?: Address } }>;
  };
  const a = s.kinds.find((k) => k.scheme === 'batch-settlement')?.extra?.receiverAuthorizer;
  if (!a) throw new Error("no batch-settlement receiverAuthorizer in the facilitator's /supported");
  return a;
}

/** `batch_settlement` as an admin sets it; `refund` left out: the shipped default (at-end) is what is tested. */
const batchSection = (url: string, to: Address, authorizer: Address): string => `
config batch_settlement 'batch_settlement'
\toption enabled '1'
\toption facilitator_url '${url}'
\toption network 'eip155:${CHAIN_ID}'
\toption receiver '${to}'
\toption receiver_authorizer '${authorizer}'
\toption withdraw_delay '900'
\toption token_name 'USDC'
\toption token_version '2'
`;

export class PhoneWorld {
  private readonly relays: Relay[] = [];
  private constructor(
    readonly lab: Lab,
    readonly chain: TestChain,
    readonly usdc: TestToken,
    readonly facilitator: TestFacilitator,
    readonly payTo: Address,
    readonly receiver: Address | null,
    public sluice: Sluice | null = null,
  ) {}

  /** The lab, the chain, the facilitator (both schemes with `batch`) and the daemon, up. */
  static async start(o: { batch: boolean }): Promise<PhoneWorld> {
    const lab = await Lab.up({ rate: '8mbit', theme: PAY_PAGE });
    const chain = await startChain({ chainId: CHAIN_ID });
    const usdc = await chain.deployToken({ name: 'USDC', version: '2' });
    // The batch contracts at their canonical addresses, and one facilitator for both schemes (as a hosted one serves
    // them).
    if (o.batch) await deployBatchStack(chain);
    const facilitator = await startFacilitator(
      chain,
      o.batch ? { batchSettlement: { authorizer: chain.newAccount() } } : {},
    );
    const w = new PhoneWorld(
      lab,
      chain,
      usdc,
      facilitator,
      chain.newAccount().address,
      o.batch ? chain.newAccount().address : null,
    );
    // sluice runs in the router's namespace: the facilitator and the chain are brought to the same ports there.
    w.relays.push(
      await relayIntoRouter(lab, portOf(facilitator.url)),
      await relayIntoRouter(lab, portOf(chain.rpcUrl)),
    );
    w.sluice = await Sluice.start(lab, {
      planAsset: usdc.address,
      extraConfig:
        `${x402Section({ facilitatorUrl: facilitator.url, payTo: w.payTo })}\toption rpc_url ` +
        `'${chain.rpcUrl}'\n\nconfig http 'http'\n\toption listen '${PAY_PAGE}'\n` +
        (w.receiver ? batchSection(facilitator.url, w.receiver, await receiverAuthorizer(facilitator.url)) : ''),
    });
    figure(
      `lab ${lab.id}: openNDS with sluice's splash, pay page on ${PAY_PAGE}, chain ${chain.rpcUrl}, ` +
        `facilitator ${facilitator.url}`,
    );
    return w;
  }

  /** The chain's answer to a wallet's read (eth_call, …). */
  readonly rpc = (method: string, params: unknown[]): Promise<unknown> =>
    this.chain.publicClient.request({ method, params } as never);

  /** A PNG of the page: in SLUICE_E2E_SCREENSHOTS when set, else in the lab's directory (gone with the lab). */
  async shot(page: Page, name: string): Promise<void> {
    const dir = process.env['SLUICE_E2E_SCREENSHOTS'] ?? join(this.lab.dir, 'screenshots');
    mkdirSync(dir, { recursive: true });
    await page.screenshot(join(dir, `${name}.png`));
  }

  /** Everything down; the daemon's log first when a scenario failed. */
  async close(failed: boolean): Promise<void> {
    if (failed) dumpLogs(this.lab, this.sluice ? () => this.sluice!.logTail() : null);
    await this.sluice?.stop();
    for (const r of this.relays) await r.close().catch(() => undefined);
    await this.facilitator.stop();
    await this.chain.stop();
    await this.lab.down();
  }
}

/**
 * A customer's page view: any web page (here the upstream's), which openNDS answers with a redirect to its splash,
 * whose refresh leads to the pay page. Resolves once the plans are on screen.
 */
export async function arrive(page: Page): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await page.goto(`http://${UPSTREAM_IP}/`);
    try {
      await page.waitFor(
        'the pay page with its plans',
        `location.host === ${JSON.stringify(PAY_PAGE)} && document.querySelectorAll('.card.plan').length > 0`,
        20_000,
      );
      return;
    } catch (err) {
      // openNDS 9.10 now and then answers its own splash with its 511 page ("Preauth script - failed to execute" in
      // its log, with the script's page in hand); a customer taps again. Said, not hidden.
      const title = await page.evaluate<string>('document.title').catch(() => '');
      if (attempt < 3 && /Client Session Status/.test(title)) {
        figure(`openNDS answered its 511 page (attempt ${attempt}); opening the page again`);
        continue;
      }
      throw err;
    }
  }
}

/** The steps typed into a plan's card, then its Pay button tapped. */
export async function choose(page: Page, plan: string, steps: number): Promise<void> {
  await page.evaluate(`(() => {
    const input = document.querySelector('[data-plan="${plan}"] input.steps');
    input.value = '${steps}';
    input.dispatchEvent(new Event('input'));
  })()`);
  await page.click(`[data-plan="${plan}"] button`);
}

/** The page's message of that kind, once shown. */
export function messageOf(page: Page, kind: 'ok' | 'error'): Promise<string> {
  return page.waitFor(
    `a ${kind} message`,
    `(() => { const m = document.getElementById('message'); return m && !m.hidden && m.className ` +
      `=== ${JSON.stringify(kind)} ? m.textContent : ''; })()`,
    30_000,
  );
}
