/**
 * A lab LNURL-pay server (LUD-06/16) on 127.0.0.1, for payout tests: the Lightning address's pay request and its
 * callback, which hands out invoices from `invoice(sat)` (the lab mint's fake bolt11, which its fake Lightning backend
 * pays). A router reaches it through `lnurl` (LUD-01 bech32 of the http pay URL: a Lightning address is https on port
 * 443, which a loopback test cannot be).
 *
 *   const ln = await startLnurlServer({ invoice: (sat) => mint.invoice(sat), minSat?, maxSat? })
 *   ln.lnurl            lnurl1… for tollgate.payout_address
 *   ln.invoices         every invoice handed out, with its amount (msat)
 *   ln.misbehave('wrong-amount' | 'error' | null)   an invoice for 1 sat more, or {status: 'ERROR'}
 *   await ln.stop()
 */
import { createServer, type Server } from 'node:http';
import { bech32Encode } from '../../src/cashu/lnurl.ts';
import '../helpers/kept-connections.ts';

export interface LnurlServer {
  readonly url: string;
  readonly lnurl: string;
  readonly invoices: Array<{ msat: number; pr: string }>;
  misbehave(kind: 'wrong-amount' | 'error' | null): void;
  stop(): Promise<void>;
}

export async function startLnurlServer(o: {
  invoice: (sat: number) => string;
  minSat?: number;
  maxSat?: number;
  user?: string;
}): Promise<LnurlServer> {
  const user = o.user ?? 'cafe';
  const invoices: Array<{ msat: number; pr: string }> = [];
  let fault: 'wrong-amount' | 'error' | null = null;
  let base = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (fault === 'error') return send(200, { status: 'ERROR', reason: 'lab fault' });
    if (url.pathname === `/.well-known/lnurlp/${user}`) {
      return send(200, {
        tag: 'payRequest',
        callback: `${base}/lnurlp/${user}/callback`,
        minSendable: (o.minSat ?? 1) * 1000,
        maxSendable: (o.maxSat ?? 1_000_000) * 1000,
        metadata: JSON.stringify([['text/plain', `lab payouts to ${user}`]]),
      });
    }
    if (url.pathname === `/lnurlp/${user}/callback`) {
      const msat = Number(url.searchParams.get('amount'));
      if (!Number.isSafeInteger(msat) || msat % 1000 !== 0) return send(400, { status: 'ERROR', reason: 'amount' });
      const pr = o.invoice(msat / 1000 + (fault === 'wrong-amount' ? 1 : 0));
      invoices.push({ msat, pr });
      return send(200, { pr, routes: [] });
    }
    send(404, { status: 'ERROR', reason: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url: base,
    lnurl: bech32Encode('lnurl', new TextEncoder().encode(`${base}/.well-known/lnurlp/${user}`)),
    invoices,
    misbehave: (kind) => {
      fault = kind;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
