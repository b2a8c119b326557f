// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlobmsgType as T, decodeBlobmsgNodes, encodeBlobmsgNodes } from '../../src/ubus/codec/index.ts';
import { formatBlobmsgJson, formatDouble, parseJsonToBlobmsg } from '../../src/ubus/json.ts';

test('numbers are typed like json-c + blobmsg_add_json_element', () => {
  const nodes = parseJsonToBlobmsg(
    '{"a":1,"b":-2147483648,"c":2147483648,"d":1.0,"e":1e2,' +
      '"f":99999999999999999999,"g":-99999999999999999999,"h":true,"i":null}',
  )!;
  assert.equal(
    nodes.map((n) => [n.name, n.type, n.value]),
    [
      ['a', T.INT32, 1],
      ['b', T.INT32, -2147483648],
      ['c', T.INT64, 2147483648n],
      ['d', T.DOUBLE, 1],
      ['e', T.DOUBLE, 100],
      ['f', T.INT64, (1n << 63n) - 1n],
      ['g', T.INT64, -(1n << 63n)],
      ['h', T.INT8, 1],
      ['i', T.UNSPEC, null],
    ],
  );
});

test('only a JSON object is accepted; duplicate keys keep the first position and the last value', () => {
  for (const bad of ['', '[1]', '1', '"s"', '{', '{"a":}', '{"a":1,}', '{"a":1} x', "{'a':1}", '{"a":01}']) {
    assert.is(parseJsonToBlobmsg(bad), undefined, bad);
  }
  const nodes = parseJsonToBlobmsg(' {"k":1,"z":2,"k":"last"} ')!;
  assert.equal(
    nodes.map((n) => [n.name, n.value]),
    [
      ['k', 'last'],
      ['z', 2],
    ],
  );
  assert.equal(parseJsonToBlobmsg('{"s":"\\u00e9\\ud83d\\ude00\\n"}')![0]!.value, 'é😀\n');
});

test('formatting: one line without spaces, or tab-indented with ": "', () => {
  const body = encodeBlobmsgNodes(parseJsonToBlobmsg('{"a":{"b":[1,{"c":"d"}]},"e":{},"f":2.5}')!);
  const nodes = decodeBlobmsgNodes(body);
  assert.is(formatBlobmsgJson(nodes), '{"a":{"b":[1,{"c":"d"}]},"e":{},"f":2.500000}');
  assert.is(
    formatBlobmsgJson(nodes, { indent: 0 }),
    '{\n\t"a": {\n\t\t"b": [\n\t\t\t1,\n\t\t\t{\n\t\t\t\t"c": "d"\n\t\t\t}\n\t\t]\n\t},\n\t"e": ' +
      '{\n\t\t\n\t},\n\t"f": 2.500000\n}',
  );
  assert.is(formatBlobmsgJson([], { indent: 0 }), '{\n\t\n}');
});

test('doubles print like printf("%lf")', () => {
  assert.is(formatDouble(0), '0.000000');
  assert.is(formatDouble(-0), '-0.000000');
  assert.is(formatDouble(1 / 3), '0.333333');
  assert.is(formatDouble(-1.5e-7), '-0.000000');
  assert.is(formatDouble(1e21), '1000000000000000000000.000000');
  assert.is(formatDouble(Number.NaN), 'nan');
  assert.is(formatDouble(-Infinity), '-inf');
});

test.run();
