// LuCI's compiled translation format (.lmo), written the way luci-base's po2lmo writes it, so `make ipk` can ship
// luci-i18n-sluice-<lang> without an SDK: each translated string (its UTF-8 bytes, zero-padded to 4) in file order,
// then the index sorted by key hash — {key_id, val_id, offset, length} as big-endian u32 — then the index's offset.
// key_id = SuperFastHash(msgid) seeded with its length; val_id = plural index + 1 (0 for the Plural-Forms entry,
// key 0). A translation whose hash equals its msgid's (unchanged text) is left out, as po2lmo does.
import { readFileSync, writeFileSync } from 'node:fs';

/** Paul Hsieh's SuperFastHash as luci-base's lmo.c has it (signed chars in the tail). */
export function sfhHash(bytes) {
  let len = bytes.length;
  if (len === 0) return 0;
  let hash = len >>> 0;
  const get16 = (i) => bytes[i] + (bytes[i + 1] << 8);
  const sc = (b) => (b > 127 ? b - 256 : b);
  const rem = len & 3;
  let i = 0;
  for (len >>>= 2; len > 0; len--) {
    hash = (hash + get16(i)) >>> 0;
    const tmp = ((get16(i + 2) << 11) ^ hash) >>> 0;
    hash = ((hash << 16) ^ tmp) >>> 0;
    i += 4;
    hash = (hash + (hash >>> 11)) >>> 0;
  }
  switch (rem) {
    case 3:
      hash = (hash + get16(i)) >>> 0;
      hash = (hash ^ (hash << 16)) >>> 0;
      hash = (hash ^ (sc(bytes[i + 2]) << 18)) >>> 0;
      hash = (hash + (hash >>> 11)) >>> 0;
      break;
    case 2:
      hash = (hash + get16(i)) >>> 0;
      hash = (hash ^ (hash << 11)) >>> 0;
      hash = (hash + (hash >>> 17)) >>> 0;
      break;
    case 1:
      hash = (hash + sc(bytes[i])) >>> 0;
      hash = (hash ^ (hash << 10)) >>> 0;
      hash = (hash + (hash >>> 1)) >>> 0;
      break;
  }
  hash = (hash ^ (hash << 3)) >>> 0;
  hash = (hash + (hash >>> 5)) >>> 0;
  hash = (hash ^ (hash << 4)) >>> 0;
  hash = (hash + (hash >>> 17)) >>> 0;
  hash = (hash ^ (hash << 25)) >>> 0;
  hash = (hash + (hash >>> 6)) >>> 0;
  return hash;
}

/** po2lmo's string extraction: only \" and \\ lose their backslash. */
const poText = (line) => {
  const m = /"((?:[^"\\]|\\.)*)"/.exec(line);
  return m ? m[1].replace(/\\(["\\])/g, '$1') : '';
};

/** Entries of a .po file: {id, value, plural: index|-1, ctxt?} plus the header's Plural-Forms. */
function parsePo(text) {
  const entries = [];
  let cur = null;
  let field = null;
  const flush = () => {
    if (cur && (cur.id !== undefined || cur.values.length)) entries.push(cur);
    cur = null;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.startsWith('msgctxt "')) {
      flush();
      cur = { values: [] };
      cur.ctxt = poText(line);
      field = 'ctxt';
    } else if (line.startsWith('msgid "')) {
      if (!cur || cur.id !== undefined) {
        flush();
        cur = { values: [] };
      }
      cur.id = poText(line);
      field = 'id';
    } else if (line.startsWith('msgid_plural "')) {
      cur.idPlural = poText(line);
      field = 'idPlural';
    } else if (line.startsWith('msgstr')) {
      const n = line[6] === '[' ? Number.parseInt(line.slice(7), 10) : 0;
      cur.values[n] = poText(line);
      field = n;
    } else if (line.startsWith('"') && cur) {
      if (typeof field === 'number') cur.values[field] += poText(line);
      else cur[field] += poText(line);
    }
  }
  flush();
  return entries;
}

export function poToLmo(poSource) {
  const chunks = [];
  const index = [];
  let offset = 0;
  const put = (key, val, bytes) => {
    index.push({ key, val, offset, length: bytes.length });
    const padded = Buffer.alloc(bytes.length + ((4 - (bytes.length % 4)) % 4));
    bytes.copy(padded);
    chunks.push(padded);
    offset += padded.length;
  };
  for (const e of parsePo(poSource)) {
    if (e.id === '' && e.ctxt === undefined) {
      const plural = /Plural-Forms: ([^\\]*)\\n/i.exec(e.values[0] ?? '');
      if (plural) put(0, 0, Buffer.from(plural[1]));
      continue;
    }
    const pluralNum = e.values.length - 1;
    e.values.forEach((value, i) => {
      if (!value) return;
      const key =
        e.ctxt !== undefined && e.idPlural !== undefined
          ? `${e.ctxt}\u0001${e.id}\u0002${i}`
          : e.ctxt !== undefined
            ? `${e.ctxt}\u0001${e.id}`
            : e.idPlural !== undefined
              ? `${e.id}\u0002${i}`
              : e.id;
      const keyBytes = Buffer.from(key);
      const valBytes = Buffer.from(value);
      const keyId = sfhHash(keyBytes);
      if (keyId !== sfhHash(valBytes)) put(keyId, pluralNum + 1, valBytes);
    });
  }
  index.sort((a, b) => a.key - b.key);
  const idx = Buffer.alloc(index.length * 16 + 4);
  index.forEach((e, i) => {
    idx.writeUInt32BE(e.key, i * 16);
    idx.writeUInt32BE(e.val, i * 16 + 4);
    idx.writeUInt32BE(e.offset, i * 16 + 8);
    idx.writeUInt32BE(e.length, i * 16 + 12);
  });
  idx.writeUInt32BE(offset, index.length * 16);
  return Buffer.concat([...chunks, idx]);
}

/** Reads an .lmo back: key hash → translated text (what LuCI's lmo_lookup finds). */
export function readLmo(buf) {
  const idxOffset = buf.readUInt32BE(buf.length - 4);
  const out = new Map();
  for (let p = idxOffset; p + 16 <= buf.length - 4; p += 16) {
    const key = buf.readUInt32BE(p),
      off = buf.readUInt32BE(p + 8),
      len = buf.readUInt32BE(p + 12);
    out.set(key, buf.subarray(off, off + len).toString('utf8'));
  }
  return out;
}

if (process.argv[1]?.endsWith('lmo.mjs') && process.argv.length === 4) {
  writeFileSync(process.argv[3], poToLmo(readFileSync(process.argv[2], 'utf8')));
}
