/**
 * A proxy in front of a test facilitator that can hold the next /settle, to place a kill or a SIGTERM exactly where a
 * settlement is out (the crash tests): everything else is forwarded as it came (a POST's body as JSON) and
 * answered with the facilitator's status and body.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface HoldingProxy {
  /** http://127.0.0.1:port, what the daemon is configured with instead of the facilitator's own URL. */
  url: string;
  /** The next /settle is taken and neither forwarded nor answered (nothing moves). Resolves when it arrives. */
  hold(): Promise<void>;
  /** The next /settle is forwarded (the money moves) and its answer never given. Resolves when the answer is in. */
  holdAnswer(): Promise<void>;
  /**
   * The next /settle waits until the test calls the function this resolves with (when it arrives), then is forwarded.
   */
  delay(): Promise<() => void>;
  /**
   * The next /settle whose payload is of `type` (claim, settle, refund, …) is forwarded (the money moves) and its
   * answer held until the test calls the function this resolves with (when the answer is in).
   */
  delayAnswer(type: string): Promise<() => void>;
  close(): Promise<void>;
}

type Next =
  | { kind: 'hold' | 'answer'; reached: () => void }
  | { kind: 'delay'; reached: (forward: () => void) => void }
  | { kind: 'delay-answer'; type: string; reached: (answer: () => void) => void };

/** The x402 payload type of a /settle body (claim, settle, refund, deposit, voucher), or undefined. */
function payloadType(body: string): string | undefined {
  try {
    const type = (JSON.parse(body) as { paymentPayload?: { payload?: { type?: unknown } } }).paymentPayload?.payload
      ?.type;
    return typeof type === 'string' ? type : undefined;
  } catch {
    return undefined;
  }
}

export async function startHoldingProxy(target: string): Promise<HoldingProxy> {
  let next: Next | undefined;
  const forward = async (req: IncomingMessage, body: string): Promise<{ status: number; text: string }> => {
    const method = req.method ?? 'GET';
    const a = await fetch(`${target}${req.url ?? ''}`, {
      method,
      ...(method === 'POST' && { body, headers: { 'content-type': 'application/json' } }),
    });
    return { status: a.status, text: await a.text() };
  };
  const relay = (req: IncomingMessage, body: string, res: ServerResponse): Promise<void> =>
    forward(req, body)
      .then(({ status, text }) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(text);
      })
      .catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(502).end(String(err));
      });
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const mine =
        req.url === '/settle' && (next?.kind !== 'delay-answer' || next.type === payloadType(body)) ? next : undefined;
      if (mine) next = undefined;
      if (mine?.kind === 'delay-answer') {
        forward(req, body).then(
          ({ status, text }) =>
            mine.reached(() => {
              res.writeHead(status, { 'content-type': 'application/json' }).end(text);
            }),
          (err: unknown) => {
            res.writeHead(502).end(String(err));
          },
        );
        return;
      }
      if (mine?.kind === 'hold') return mine.reached();
      if (mine?.kind === 'delay')
        return mine.reached(() => {
          void relay(req, body, res);
        });
      if (mine?.kind === 'answer') {
        forward(req, body).then(
          () => mine.reached(),
          (err: unknown) => {
            res.writeHead(502).end(String(err));
          },
        );
        return;
      }
      void relay(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    hold: () =>
      new Promise<void>((r) => {
        next = { kind: 'hold', reached: r };
      }),
    holdAnswer: () =>
      new Promise<void>((r) => {
        next = { kind: 'answer', reached: r };
      }),
    delay: () =>
      new Promise<() => void>((r) => {
        next = { kind: 'delay', reached: r };
      }),
    delayAnswer: (type) =>
      new Promise<() => void>((r) => {
        next = { kind: 'delay-answer', type, reached: r };
      }),
    // A held request's connection is still open: closeAllConnections, or close() would wait for it forever.
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
