/**
 * A browser wallet for the lab's Chromium: an EIP-1193 `window.ethereum` injected into every page, whose requests go
 * over a DevTools binding to this process, where a viem account signs (eth_signTypedData_v4, personal_sign) exactly as
 * a wallet does, and reads (eth_call, eth_chainId) are answered from the test chain. What a customer's wallet app would
 * be; every request it saw is kept, so a test can tell that the customer was never asked to sign.
 */
import type { PrivateKeyAccount } from 'viem/accounts';
import type { Hex } from 'viem';
import type { Page } from './browser.ts';

const BINDING = '__sluiceWallet';

const INJECTED = `(() => {
  let seq = 0;
  const waiting = new Map();
  window.__sluiceWalletReply = (id, ok, value) => {
    const w = waiting.get(id);
    waiting.delete(id);
    if (!w) return;
    if (ok) w.resolve(value); else w.reject(Object.assign(new Error(value.message), { code: value.code }));
  };
  window.ethereum = {
    isSluiceLabWallet: true,
    request: ({ method, params }) => new Promise((resolve, reject) => {
      const id = ++seq;
      waiting.set(id, { resolve, reject });
      window.${BINDING}(JSON.stringify({ id, method, params: params || [] }));
    }),
    on() {}, removeListener() {},
  };
})();`;

export interface WalletRequest {
  method: string;
  params: unknown[];
  /** Date.now() when the page asked: when a customer would have seen the prompt. */
  at: number;
}

export interface LabWallet {
  readonly requests: WalletRequest[];
  /** The signing requests (typed data, personal_sign) the customer would have been asked to approve. */
  signatures(): WalletRequest[];
}

/** Injects the wallet into `page` (from its next navigation on). `rpc` answers eth_call. */
export async function injectWallet(
  page: Page,
  account: PrivateKeyAccount,
  chainId: number,
  rpc: (method: string, params: unknown[]) => Promise<unknown>,
): Promise<LabWallet> {
  const requests: WalletRequest[] = [];
  await page.send('Runtime.addBinding', { name: BINDING });
  await page.send('Page.addScriptToEvaluateOnNewDocument', { source: INJECTED });

  async function answer(method: string, params: unknown[]): Promise<unknown> {
    switch (method) {
      case 'eth_requestAccounts':
      case 'eth_accounts':
        return [account.address];
      case 'eth_chainId':
        return `0x${chainId.toString(16)}`;
      case 'wallet_switchEthereumChain': {
        const want = Number.parseInt(String((params[0] as { chainId?: string })?.chainId), 16);
        if (want !== chainId) throw Object.assign(new Error('Unrecognized chain'), { code: 4902 });
        return null;
      }
      case 'eth_signTypedData_v4': {
        const [from, json] = params as [string, string];
        if (from.toLowerCase() !== account.address.toLowerCase())
          throw Object.assign(new Error('unknown account'), { code: 4100 });
        const data = JSON.parse(json) as {
          domain: Record<string, unknown>;
          types: Record<string, unknown>;
          primaryType: string;
          message: Record<string, unknown>;
        };
        const { EIP712Domain: _domain, ...types } = data.types;
        return account.signTypedData({
          domain: data.domain,
          types,
          primaryType: data.primaryType,
          message: data.message,
        } as never);
      }
      case 'personal_sign': {
        const [message] = params as [Hex];
        return account.signMessage({ message: /^0x[0-9a-fA-F]*$/.test(message) ? { raw: message } : message });
      }
      case 'eth_call':
      case 'eth_blockNumber':
      case 'eth_getBalance':
        return rpc(method, params);
      default:
        throw Object.assign(new Error(`the lab wallet does not do ${method}`), { code: 4200 });
    }
  }

  page.browser.on((event, p, sid) => {
    if (sid !== page.sessionId || event !== 'Runtime.bindingCalled' || p['name'] !== BINDING) return;
    const { id, method, params } = JSON.parse(String(p['payload'])) as {
      id: number;
      method: string;
      params: unknown[];
    };
    requests.push({ method, params, at: Date.now() });
    void answer(method, params)
      .then(
        (value) => [true, value] as const,
        (err: Error & { code?: number }) => [false, { message: err.message, code: err.code ?? -32603 }] as const,
      )
      .then(([ok, value]) =>
        page.send('Runtime.evaluate', {
          expression: `window.__sluiceWalletReply(${id}, ${ok}, ${JSON.stringify(value ?? null)})`,
        }),
      )
      .catch(() => undefined); // the page navigated away meanwhile
  });
  return {
    requests,
    signatures: () => requests.filter((r) => r.method === 'eth_signTypedData_v4' || r.method === 'personal_sign'),
  };
}
