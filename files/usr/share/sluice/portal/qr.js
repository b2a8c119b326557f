/*
 * A small QR code encoder for the pay page (ISO/IEC 18004): byte mode (UTF-8), versions 1 to 10 (up to 271 bytes at
 * level L, 213 at M: a pay page URL is well under 100), any error correction level, the mask with the lowest penalty
 * (or a given one). Written here rather than pulled in: the page has no build step and no dependency, and this is all
 * of QR that a URL needs. Its matrices are checked module for module against an independent encoder (Python's qrcode
 * 8.2) in test/http/qr.test.ts. Layout after Project Nayuki's QR Code generator (MIT), reduced to what is used here.
 * SluiceQr.encode(text, level?, mask?) → {version, size, mask, modules: rows of booleans (true = dark)};
 * SluiceQr.svg(qr, border?) → an SVG document (one path) for an <img src="data:image/svg+xml,…">.
 */
(function(root) {
	'use strict';

	var LEVELS = { L: 0, M: 1, Q: 2, H: 3 };
	/* The format field's 2 bits per level (L 01, M 00, Q 11, H 10). */
	var FORMAT_BITS = [ 1, 0, 3, 2 ];
	/* ISO 18004 table 9, versions 1-10 (index 0 unused): error correction codewords per block, and blocks. */
	var ECC_PER_BLOCK = [
		[ -1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18 ],
		[ -1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26 ],
		[ -1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24 ],
		[ -1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28 ]
	];
	var BLOCKS = [
		[ -1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4 ],
		[ -1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5 ],
		[ -1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8 ],
		[ -1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8 ]
	];
	var MAX_VERSION = 10;

	function bit(x, i) { return ((x >>> i) & 1) !== 0; }

	/* Modules left for data and error correction in a symbol of `ver` (all but the function patterns). */
	function rawDataModules(ver) {
		var result = (16 * ver + 128) * ver + 64;
		if (ver >= 2) {
			var numAlign = Math.floor(ver / 7) + 2;
			result -= (25 * numAlign - 10) * numAlign - 55;
			if (ver >= 7) result -= 36;
		}
		return result;
	}

	function dataCodewords(ver, ecl) {
		return Math.floor(rawDataModules(ver) / 8) - ECC_PER_BLOCK[ecl][ver] * BLOCKS[ecl][ver];
	}

	/* ---- Reed-Solomon over GF(256), polynomial 0x11D ---- */

	function gfMultiply(x, y) {
		var z = 0;
		for (var i = 7; i >= 0; i--) {
			z = (z << 1) ^ ((z >>> 7) * 0x11D);
			z ^= ((y >>> i) & 1) * x;
		}
		return z;
	}

	function rsDivisor(degree) {
		var result = [];
		for (var i = 0; i < degree - 1; i++) result.push(0);
		result.push(1);
		var r = 1;
		for (i = 0; i < degree; i++) {
			for (var j = 0; j < result.length; j++) {
				result[j] = gfMultiply(result[j], r);
				if (j + 1 < result.length) result[j] ^= result[j + 1];
			}
			r = gfMultiply(r, 0x02);
		}
		return result;
	}

	function rsRemainder(data, divisor) {
		var result = divisor.map(function() { return 0; });
		data.forEach(function(b) {
			var factor = b ^ result.shift();
			result.push(0);
			divisor.forEach(function(coef, i) { result[i] ^= gfMultiply(coef, factor); });
		});
		return result;
	}

	/* ---- the symbol ---- */

	function utf8Bytes(text) {
		var s = unescape(encodeURIComponent(text));
		var out = [];
		for (var i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
		return out;
	}

	function alignmentPositions(ver) {
		if (ver === 1) return [];
		var numAlign = Math.floor(ver / 7) + 2;
		var step = Math.ceil((ver * 4 + 4) / (numAlign * 2 - 2)) * 2;
		var result = [ 6 ];
		for (var pos = ver * 4 + 10; result.length < numAlign; pos -= step) result.splice(1, 0, pos);
		return result;
	}

	function Symbol(ver) {
		this.size = ver * 4 + 17;
		this.modules = [];
		this.isFunction = [];
		for (var y = 0; y < this.size; y++) {
			this.modules.push(new Array(this.size).fill(false));
			this.isFunction.push(new Array(this.size).fill(false));
		}
	}
	Symbol.prototype.set = function(x, y, dark) {
		this.modules[y][x] = dark;
		this.isFunction[y][x] = true;
	};

	function drawFunctionPatterns(s, ver) {
		var size = s.size, i;
		for (i = 0; i < size; i++) {
			s.set(6, i, i % 2 === 0);
			s.set(i, 6, i % 2 === 0);
		}
		[ [ 3, 3 ], [ size - 4, 3 ], [ 3, size - 4 ] ].forEach(function(c) {
			for (var dy = -4; dy <= 4; dy++) {
				for (var dx = -4; dx <= 4; dx++) {
					var dist = Math.max(Math.abs(dx), Math.abs(dy)), x = c[0] + dx, y = c[1] + dy;
					if (x >= 0 && x < size && y >= 0 && y < size) s.set(x, y, dist !== 2 && dist !== 4);
				}
			}
		});
		var align = alignmentPositions(ver), n = align.length;
		for (i = 0; i < n; i++) {
			for (var j = 0; j < n; j++) {
				if ((i === 0 && j === 0) || (i === 0 && j === n - 1) || (i === n - 1 && j === 0)) continue;
				for (var dy2 = -2; dy2 <= 2; dy2++)
					for (var dx2 = -2; dx2 <= 2; dx2++) s.set(align[i] + dx2, align[j] + dy2, Math.max(Math.abs(dx2), Math.abs(dy2)) !== 1);
			}
		}
		drawFormat(s, 0, 0); // reserves the format area; drawn for real once the mask is known
		if (ver >= 7) {
			var rem = ver;
			for (i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1F25);
			var bits = (ver << 12) | rem;
			for (i = 0; i < 18; i++) {
				var a = size - 11 + (i % 3), b = Math.floor(i / 3);
				s.set(a, b, bit(bits, i));
				s.set(b, a, bit(bits, i));
			}
		}
	}

	function drawFormat(s, ecl, mask) {
		var data = (FORMAT_BITS[ecl] << 3) | mask, rem = data, i;
		for (i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
		var bits = ((data << 10) | rem) ^ 0x5412, size = s.size;
		for (i = 0; i <= 5; i++) s.set(8, i, bit(bits, i));
		s.set(8, 7, bit(bits, 6));
		s.set(8, 8, bit(bits, 7));
		s.set(7, 8, bit(bits, 8));
		for (i = 9; i < 15; i++) s.set(14 - i, 8, bit(bits, i));
		for (i = 0; i < 8; i++) s.set(size - 1 - i, 8, bit(bits, i));
		for (i = 8; i < 15; i++) s.set(8, size - 15 + i, bit(bits, i));
		s.set(8, size - 8, true);
	}

	/* The data codewords split into blocks, each with its error correction, interleaved (ISO 18004 7.6). */
	function withErrorCorrection(data, ver, ecl) {
		var numBlocks = BLOCKS[ecl][ver], eccLen = ECC_PER_BLOCK[ecl][ver];
		var raw = Math.floor(rawDataModules(ver) / 8);
		var numShort = numBlocks - raw % numBlocks, shortLen = Math.floor(raw / numBlocks);
		var divisor = rsDivisor(eccLen), blocks = [], k = 0, i;
		for (i = 0; i < numBlocks; i++) {
			var dat = data.slice(k, k + shortLen - eccLen + (i < numShort ? 0 : 1));
			k += dat.length;
			var ecc = rsRemainder(dat, divisor);
			if (i < numShort) dat.push(0);
			blocks.push(dat.concat(ecc));
		}
		var result = [];
		for (i = 0; i < blocks[0].length; i++) {
			for (var j = 0; j < blocks.length; j++)
				if (i !== shortLen - eccLen || j >= numShort) result.push(blocks[j][i]);
		}
		return result;
	}

	function drawCodewords(s, codewords) {
		var size = s.size, i = 0;
		for (var right = size - 1; right >= 1; right -= 2) {
			if (right === 6) right = 5;
			for (var vert = 0; vert < size; vert++) {
				for (var j = 0; j < 2; j++) {
					var x = right - j, upward = ((right + 1) & 2) === 0, y = upward ? size - 1 - vert : vert;
					if (!s.isFunction[y][x] && i < codewords.length * 8) {
						s.modules[y][x] = bit(codewords[i >>> 3], 7 - (i & 7));
						i++;
					}
				}
			}
		}
	}

	var MASKS = [
		function(x, y) { return (x + y) % 2 === 0; },
		function(x, y) { return y % 2 === 0; },
		function(x) { return x % 3 === 0; },
		function(x, y) { return (x + y) % 3 === 0; },
		function(x, y) { return (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0; },
		function(x, y) { return x * y % 2 + x * y % 3 === 0; },
		function(x, y) { return (x * y % 2 + x * y % 3) % 2 === 0; },
		function(x, y) { return ((x + y) % 2 + x * y % 3) % 2 === 0; }
	];

	function applyMask(s, mask) {
		var size = s.size, test = MASKS[mask];
		for (var y = 0; y < size; y++) {
			var row = s.modules[y], fixed = s.isFunction[y];
			for (var x = 0; x < size; x++) if (!fixed[x] && test(x, y)) row[x] = !row[x];
		}
	}

	/*
	 * One row (`row` true) or column of the symbol: its runs of five or more, and its finder-like windows
	 * (1011101 with four light modules on either side), read as an 11-bit number sliding along the line. A page
	 * runs this cold, for each of the eight masks: a string of the line and a slice of it for each window were
	 * most of choosing one.
	 */
	function linePenalty(m, k, row) {
		var size = m.length, s = 0, run = 0, window = 0, prev, c;
		for (var i = 0; i < size; i++) {
			c = row ? m[k][i] : m[i][k];
			if (i > 0 && c === prev) run++;
			else {
				if (run >= 5) s += 3 + run - 5;
				run = 1;
			}
			prev = c;
			window = ((window << 1) | (c ? 1 : 0)) & 0x7FF;
			if (i >= 10 && (window === 0x5D0 || window === 0x05D)) s += 40;
		}
		if (run >= 5) s += 3 + run - 5;
		return s;
	}

	/* ISO 18004 7.8.3's penalty: long runs, 2×2 blocks, finder-like patterns, dark/light balance. */
	function penalty(m) {
		var size = m.length, score = 0, x, y, dark = 0;
		for (y = 0; y < size; y++) score += linePenalty(m, y, true);
		for (x = 0; x < size; x++) score += linePenalty(m, x, false);
		for (y = 0; y + 1 < size; y++)
			for (x = 0; x + 1 < size; x++)
				if (m[y][x] === m[y][x + 1] && m[y][x] === m[y + 1][x] && m[y][x] === m[y + 1][x + 1]) score += 3;
		for (y = 0; y < size; y++) for (x = 0; x < size; x++) if (m[y][x]) dark++;
		var total = size * size;
		score += (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1) * 10;
		return score;
	}

	function encode(text, level, forcedMask) {
		var ecl = LEVELS[level || 'M'];
		if (ecl === undefined) throw new Error('level must be L, M, Q or H');
		var bytes = utf8Bytes(String(text)), ver;
		for (ver = 1; ver <= MAX_VERSION; ver++) {
			var countBits = ver <= 9 ? 8 : 16;
			if (4 + countBits + bytes.length * 8 <= dataCodewords(ver, ecl) * 8) break;
		}
		if (ver > MAX_VERSION) throw new Error('text too long for a version ' + MAX_VERSION + ' QR code');
		var bits = [];
		var put = function(value, n) { for (var i = n - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
		put(4, 4);
		put(bytes.length, ver <= 9 ? 8 : 16);
		bytes.forEach(function(b) { put(b, 8); });
		var capacity = dataCodewords(ver, ecl) * 8;
		put(0, Math.min(4, capacity - bits.length));
		put(0, (8 - bits.length % 8) % 8);
		for (var pad = 0xEC; bits.length < capacity; pad ^= 0xEC ^ 0x11) put(pad, 8);
		var data = [];
		for (var i = 0; i < bits.length; i += 8) data.push(parseInt(bits.slice(i, i + 8).join(''), 2));

		var s = new Symbol(ver);
		drawFunctionPatterns(s, ver);
		drawCodewords(s, withErrorCorrection(data, ver, ecl));
		var mask = forcedMask;
		if (mask === undefined) {
			var best = Infinity;
			for (var m = 0; m < 8; m++) {
				applyMask(s, m);
				drawFormat(s, ecl, m);
				var p = penalty(s.modules);
				if (p < best) { best = p; mask = m; }
				applyMask(s, m); // XOR again: undone
			}
		}
		applyMask(s, mask);
		drawFormat(s, ecl, mask);
		return { version: ver, size: s.size, mask: mask, modules: s.modules };
	}

	/* One path of unit squares, a light quiet zone of `border` modules (the standard asks for 4). */
	function svg(qr, border) {
		var b = border === undefined ? 4 : border, d = '', dim = qr.size + 2 * b;
		for (var y = 0; y < qr.size; y++)
			for (var x = 0; x < qr.size; x++)
				if (qr.modules[y][x]) d += 'M' + (x + b) + ',' + (y + b) + 'h1v1h-1z';
		return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + dim + ' ' + dim + '" shape-rendering="crispEdges">'
			+ '<rect width="100%" height="100%" fill="#fff"/><path d="' + d + '" fill="#000"/></svg>';
	}

	root.SluiceQr = { encode: encode, svg: svg, MAX_VERSION: MAX_VERSION };
})(typeof window !== 'undefined' ? window : globalThis);
