/**
 * A test-only payment method, added through the list alone: `stamp`, a paper stamp card the staff punch. A code
 * `<prefix>-<n>` buys the plan once; its folder brings the method, its own config section (`config stamp 'stamp'`:
 * the cards' `prefix`, STAMP by default), its own error codes (a malformed code, a punched one), one ubus method
 * (`stamp_count`, the codes sold), one LAN route (POST /stamp: the caller's own MAC, the endpoint's rules) and a
 * listener of its own (`stamp.listen`: GET / answers the codes sold). Nothing of src/ names it.
 */
import { createServer, type Server } from 'node:http';
import { methodErrors, SluiceError } from '../../../src/errors.ts';
import type { Config } from '../../../src/config/index.ts';
import type { SectionReader } from '../../../src/config/reader.ts';
import type { PaymentPlugin, PluginDoor } from '../../../src/payments/plugin.ts';
import type { LanFace, UbusFace } from '../../../src/payments/plugin-faces.ts';
import type { PaymentContext, PaymentMethod } from '../../../src/payments/types.ts';

/** Its codes, with [ubus status, HTTP status] as src/errors.ts's table has them. */
export const STAMP_ERRORS = methodErrors({
  ERR_STAMP_CODE: ['INVALID_ARGUMENT', 400],
  ERR_STAMP_PUNCHED: ['PERMISSION_DENIED', 402],
});

interface StampSection {
  prefix: string;
  /** Where its own counter listens (`host:port`; '': nowhere). */
  listen: string;
}

const sectionOf = (config: Config): StampSection | undefined => config.sections?.['stamp'] as StampSection | undefined;
const prefixOf = (config: Config): string => sectionOf(config)?.prefix ?? 'STAMP';

interface StampFace {
  sold(): number;
}

const faceOf = (face: UbusFace | LanFace | null): StampFace => {
  const stamps = (face as { stamps?: StampFace } | null)?.stamps;
  if (!stamps) throw new SluiceError('ERR_PAYMENT_METHOD_UNAVAILABLE', 'stamp cards are not sold here');
  return stamps;
};

export const stampPlugin: PaymentPlugin = {
  name: 'stamp',
  section: {
    type: 'stamp',
    read: (r: SectionReader): StampSection => ({
      prefix: r.string('prefix', 'STAMP', (v) => (/^[A-Z]{1,8}$/.test(v) ? undefined : 'must be 1-8 capitals')),
      listen: r.string('listen', '', (v) => (/^$|^[0-9.]+:[0-9]{1,5}$/.test(v) ? undefined : 'must be host:port')),
    }),
  },
  // The register phase, before any plugin opens: its ubus method and LAN route exist whether or not it runs.
  register(add) {
    add.lanUse({ name: 'stamp', on: () => true });
    add.ubusMethod('stamp_count', {
      args: {},
      adminOnly: true,
      handler: (_args, face) => ({ sold: faceOf(face).sold() }),
    });
    add.lanRoute({
      method: 'POST',
      path: '/stamp',
      paying: true,
      async handler(req, face) {
        faceOf(face);
        const body = await req.json(1024, STAMP_ERRORS.ERR_STAMP_CODE, '{"code": "<prefix>-<n>"}');
        return { status: 200, body: await req.purchase(await req.mac(), { method: 'stamp', code: body.code }) };
      },
    });
  },
  async open({ config, door }) {
    let prefix = prefixOf(config);
    const used = new Set<string>();
    const checked = (ctx: PaymentContext): string => {
      const code = ctx.request.payment['code'];
      if (typeof code !== 'string' || !new RegExp(`^${prefix}-\\d{1,6}$`).test(code))
        throw new SluiceError(STAMP_ERRORS.ERR_STAMP_CODE, `payment.code must be ${prefix}-<n>`);
      if (used.has(code)) throw new SluiceError(STAMP_ERRORS.ERR_STAMP_PUNCHED, `${code} was punched already`);
      return code;
    };
    const method: PaymentMethod = {
      name: 'stamp',
      adminOnly: false,
      async precheck(ctx: PaymentContext) {
        return { reference: checked(ctx) };
      },
      async authorize(ctx: PaymentContext) {
        const code = checked(ctx);
        used.add(code);
        return { method: 'stamp', reference: code, amount: ctx.quote.price, asset: ctx.quote.asset, at: ctx.now };
      },
    };
    const stamps: StampFace = { sold: () => used.size };
    // Its own listener (`stamp.listen`): the codes sold, on a port of its own that the host opens, moves and closes.
    door(counterDoor(stamps));
    return {
      methods: [method],
      reconfigure: (next) => void (prefix = prefixOf(next)),
      ubus: { stamps } as UbusFace,
      lan: { stamps } as LanFace,
    };
  },
};

/** The counter's door: GET / answers the codes sold, wherever `stamp.listen` puts it. */
function counterDoor(stamps: StampFace): PluginDoor {
  let server: Server | null = null;
  let at = '';
  const close = async (): Promise<void> => {
    const was = server;
    server = null;
    at = '';
    if (was) await new Promise((resolve) => was.close(resolve));
  };
  return {
    option: 'stamp.listen',
    at: (config) => sectionOf(config)?.listen ?? '',
    async follow(config) {
      const next = sectionOf(config)?.listen ?? '';
      if (next === at) return;
      await close();
      if (next === '') return;
      const [host, port] = [next.slice(0, next.lastIndexOf(':')), Number(next.slice(next.lastIndexOf(':') + 1))];
      const s = createServer((_req, res) => res.end(JSON.stringify({ sold: stamps.sold() })));
      // A port that cannot be bound leaves the counter closed; the rest of the daemon runs (PluginDoor.follow).
      await new Promise<void>((resolve) => s.once('error', () => resolve()).listen(port, host, resolve));
      if (s.listening) [server, at] = [s, next];
    },
    close,
  };
}
