/**
 * A test-only payment method, added through the list alone: `stamp`, a paper stamp card the staff punch. A code
 * `STAMP-<n>` buys the plan once; its folder brings the method, one ubus method (`stamp_count`, the codes sold) and
 * one LAN route (POST /stamp: the caller's own MAC, the endpoint's rules). It uses the error table's shared codes and
 * no config section of its own (a plugin's own section and codes still go in src/config/ and src/errors.ts). Nothing
 * of src/ names it.
 */
import { SluiceError } from '../../../src/errors.ts';
import type { LanFace, PaymentPlugin, UbusFace } from '../../../src/payments/plugin.ts';
import type { PaymentContext, PaymentMethod } from '../../../src/payments/types.ts';

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
  lanUse: { name: 'stamp', on: () => true },
  ubusMethods: {
    stamp_count: { args: {}, adminOnly: true, handler: (_args, face) => ({ sold: faceOf(face).sold() }) },
  },
  lanRoutes: [
    {
      method: 'POST',
      path: '/stamp',
      paying: true,
      async handler(req, face) {
        faceOf(face);
        const body = await req.json(1024, 'ERR_INVALID_ARGUMENT', '{"code": "STAMP-<n>"}');
        return { status: 200, body: await req.purchase(await req.mac(), { method: 'stamp', code: body.code }) };
      },
    },
  ],
  async open() {
    const used = new Set<string>();
    const method: PaymentMethod = {
      name: 'stamp',
      adminOnly: false,
      async precheck(ctx: PaymentContext) {
        const code = ctx.request.payment['code'];
        if (typeof code !== 'string' || !/^STAMP-\d{1,6}$/.test(code))
          throw new SluiceError('ERR_INVALID_ARGUMENT', 'payment.code must be STAMP-<n>');
        if (used.has(code)) throw new SluiceError('ERR_PAYMENT_REPLAYED', `${code} was punched already`);
        return { reference: code };
      },
      async authorize(ctx: PaymentContext) {
        const code = ctx.request.payment['code'] as string;
        if (used.has(code)) throw new SluiceError('ERR_PAYMENT_REPLAYED', `${code} was punched already`);
        used.add(code);
        return { method: 'stamp', reference: code, amount: ctx.quote.price, asset: ctx.quote.asset, at: ctx.now };
      },
    };
    const stamps: StampFace = { sold: () => used.size };
    return { methods: [method], ubus: { stamps } as UbusFace, lan: { stamps } as LanFace };
  },
};
