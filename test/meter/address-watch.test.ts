// tier: fast
/**
 * The address watch (meter/address-watch.ts): which paying clients the kernel's neighbour table shows on an address
 * the portal has not listed them with. An address sluice authed a client on is no news: every new customer would
 * otherwise cost a listing of the portal (openNDS 10.3.1: ≈ 3 s of its CPU at 32 clients).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AddressWatch } from '../../src/meter/address-watch.ts';

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';

/** /proc/net/arp as the kernel prints it (flags 0x2: resolved; 0x0: incomplete). */
function arp(rows: Array<[ip: string, mac: string, flags?: string]>): string {
  const head = 'IP address       HW type     Flags       HW address            Mask     Device';
  return [
    head,
    ...rows.map(([ip, mac, flags]) => `${ip}  0x1  ${flags ?? '0x2'}  ${mac.toUpperCase()}  *  br-lan`),
  ].join('\n');
}

test('a paying client on an address no listing showed is news once; one not paying never', () => {
  const w = new AddressWatch();
  const table = arp([
    ['10.0.0.2', A],
    ['10.0.0.3', B],
  ]);
  assert.is(w.news(table, new Set([A])), 1);
  assert.is(w.news(table, new Set([A])), 0, 'the pair is known now');
  assert.is(w.news(arp([['10.0.0.9', A, '0x0']]), new Set([A])), 0, 'an unresolved entry is not an address');
});

test('the address sluice authed a client on is no news; a new lease after it is', () => {
  const w = new AddressWatch();
  w.authed(A, '10.0.0.2');
  assert.is(w.news(arp([['10.0.0.2', A]]), new Set([A])), 0);
  assert.is(w.news(arp([['10.0.0.7', A]]), new Set([A])), 1, 'the same MAC on another address');
});

test('a client being authed is no news until its auth ends; one that failed is news after it', () => {
  const w = new AddressWatch();
  const table = arp([['10.0.0.2', A]]);
  // Its counters are made just before the auth: it is paying while the portal works on the auth.
  w.authing(A);
  assert.is(w.news(table, new Set([A])), 0, 'its address comes with the auth');
  w.authed(A, '10.0.0.2');
  w.settled(A);
  assert.is(w.news(table, new Set([A])), 0, 'authed there');
  w.authing(B);
  w.settled(B); // the auth failed: no address from it
  assert.is(w.news(arp([['10.0.0.3', B]]), new Set([B])), 1, 'a paying client no listing nor auth placed');
});

test('a listing makes its pairs known; a MAC neither listed nor paying is forgotten', () => {
  const w = new AddressWatch();
  w.listed([A, '10.0.0.2', B, '']);
  const table = arp([['10.0.0.2', A]]);
  assert.is(w.news(table, new Set([A])), 0);
  w.listed([]);
  assert.is(w.news(table, new Set([A])), 0, 'no longer listed but paying: still known');
  assert.is(w.news(table, new Set()), 0, 'not paying: nothing to report');
  assert.is(w.news(table, new Set([A])), 1, 'forgotten once neither: its pair is news again');
});

test.run();
