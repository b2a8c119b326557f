// tier: fast
/**
 * SMTP's wire format, pinned: replies read line by line however the bytes are cut, multi-line replies whole, and
 * refusals before anything over a limit is kept; EHLO's keywords; DATA's body (CRLF, dot-stuffed, ended by ".");
 * AUTH PLAIN's bytes (RFC 4616's example); an address that could smuggle a command refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { authPlain, dataBody, extensions, path, ReplyReader } from '../../src/fleet/dashboard/smtp-wire.ts';

const all = (r: ReplyReader) => {
  const out = [];
  for (let x = r.take(); x !== undefined; x = r.take()) out.push(x);
  return out;
};

test('replies: multi-line whole, cut anywhere, LF-only tolerated', () => {
  const bytes = Buffer.from('220 mx ready\r\n250-mx hello\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\n');
  for (let cut = 1; cut < bytes.length; cut++) {
    const r = new ReplyReader();
    r.push(bytes.subarray(0, cut));
    r.push(bytes.subarray(cut));
    assert.equal(all(r), [
      { code: 220, lines: ['mx ready'] },
      { code: 250, lines: ['mx hello', '8BITMIME', 'AUTH PLAIN LOGIN', 'STARTTLS'] },
    ]);
  }
  const r = new ReplyReader();
  r.push(Buffer.from('354\r\n'));
  assert.equal(all(r), [{ code: 354, lines: [''] }]);
});

test('replies: a line without a code, codes that disagree, over-long lines and replies are refused', () => {
  assert.throws(() => new ReplyReader().push(Buffer.from('hello\r\n')), /not an SMTP reply/);
  assert.throws(() => new ReplyReader().push(Buffer.from('250-a\r\n251 b\r\n')), /disagree: 250, 251/);
  assert.throws(() => new ReplyReader().push(Buffer.alloc(600, 0x41)), /longer than 512/);
  assert.throws(() => new ReplyReader().push(Buffer.from('250-x\r\n'.repeat(65))), /more than 64 lines/);
});

test('EHLO keywords: STARTTLS, AUTH mechanisms (also AUTH=), 8BITMIME; the greeting line is not one', () => {
  const e = extensions({ code: 250, lines: ['STARTTLS mx', 'auth=LOGIN', 'AUTH plain CRAM-MD5', '8BITMIME'] });
  assert.equal(e, { starttls: false, auth: ['LOGIN', 'PLAIN', 'CRAM-MD5'], eightBitMime: true });
  assert.equal(extensions({ code: 250, lines: ['mx'] }), { starttls: false, auth: [], eightBitMime: false });
});

test('DATA: every line ends CRLF, a leading dot doubled, then the final dot line', () => {
  assert.is(
    dataBody('Subject: x\n\n.\n..a\nb.\r\nc\rd\n').toString(),
    'Subject: x\r\n\r\n..\r\n...a\r\nb.\r\nc\r\nd\r\n.\r\n',
  );
  assert.is(dataBody('').toString(), '\r\n.\r\n');
});

test('AUTH PLAIN is RFC 4616 without an authorization identity; a path cannot carry a command', () => {
  assert.is(Buffer.from(authPlain('tim', 'tanstaaftanstaaf'), 'base64').toString(), '\0tim\0tanstaaftanstaaf');
  assert.is(path('a@b.example'), '<a@b.example>');
  assert.throws(() => path('a@b>\r\nRCPT TO:<c@d'), /is not a mail address/);
  assert.throws(() => path('no-at-sign'), /is not a mail address/);
});

test.run();
