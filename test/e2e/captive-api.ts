/**
 * sluice's captive HTTP API called from a lab client, as its pay page does (the server knows the client by its
 * address).
 */
import { ROUTER_LAN_IP, run, type Client } from './lab.ts';

/**
 * The pay page's address: `lab.sh --theme` (Lab.up({theme})) opens its port to the clients in openNDS's users-to-router
 * rules.
 */
export const PAY_PAGE_LISTEN = `${ROUTER_LAN_IP}:2122`;

/**
 * The http section for a lab without a payment backend: a PC-sync secret turns the LAN endpoint on (purchases there
 * are grants or trials).
 */
export const HTTP_SECTION =
  `config http 'http'\n\toption listen '${PAY_PAGE_LISTEN}'\n\toption pcsync_secret ` +
  `'lab-captive-secret-0123456789abcdef'\n`;

export interface ApiReply {
  status: number;
  json: Record<string, unknown>;
}

export async function api(c: Client, path: string, body?: unknown): Promise<ApiReply> {
  const args = [
    'netns',
    'exec',
    c.ns,
    'curl',
    '-s',
    '--max-time',
    '10',
    '-w',
    '\n%{http_code}',
    ...(body === undefined ? [] : ['-H', 'content-type: application/json', '--data-binary', JSON.stringify(body)]),
    `http://${PAY_PAGE_LISTEN}${path}`,
  ];
  const r = await run('ip', args, 15_000);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(lines.join('\n')) as Record<string, unknown>;
  } catch {
    json = { raw: lines.join('\n') };
  }
  return { status, json };
}

export const errorCode = (r: ApiReply): string | undefined => (r.json.error as { code?: string } | undefined)?.code;
