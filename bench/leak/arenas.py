# gdb script (`gdb -q -p PID -batch -x bench/leak/arenas.py`) for `npm run bench -- leak --arenas FILE`: walks every
# glibc malloc arena of the attached process (glibc 2.36 layout; libc6-dbg's symbols) and appends to
# $SLUICE_ARENAS_OUT, under the label $SLUICE_ARENAS_LABEL, what each holds: its heaps, the bytes in use and free,
# the bytes in use by MiB of the heap, and its highest chunks in use, named by the vtable or symbol their first word
# points at. glibc gives a heap back only from its top, so those highest chunks are what keeps an arena's free memory
# resident. A chunk marked in use may in fact be free: held in a thread's tcache (its second word is glibc's
# tcache_key; counted as "in tcaches") or in one of the arena's fastbins (counted as free).
import os
import gdb

HEAP_MAX = 64 * 1024 * 1024
HEAP_INFO = 48  # sizeof(heap_info), 64-bit
SHOWN = 25
inf = gdb.selected_inferior()


def u64(addr):
    return int.from_bytes(inf.read_memory(addr, 8).tobytes(), 'little')


def symbol(word):
    try:
        text = gdb.execute('info symbol 0x%x' % word, to_string=True).strip()
    except gdb.error:
        return ''
    return '' if text.startswith('No symbol') else text.split(' in section')[0]


def fastbin_chunks(arena):
    out = set()
    for k in range(10):
        p = int(arena['fastbinsY'][k])
        n = 0
        while p and n < 100000:
            out.add(p)
            p = ((p + 16) >> 12) ^ u64(p + 16)  # safe-linking
            n += 1
    return out


def walk(arena, tcache_key, out):
    address = int(arena.address)
    top = int(arena['top'])
    fast = fastbin_chunks(arena)
    heaps = []
    h = top & ~(HEAP_MAX - 1)
    while h:
        heaps.append((h, u64(h + 16)))
        h = u64(h + 8)
    used, free, cached = [], 0, 0
    for (h, size) in heaps:
        start = h + HEAP_INFO
        if address == start:
            start = address + int(gdb.parse_and_eval('sizeof(struct malloc_state)'))
        c = (start + 15) & ~15
        end = h + size
        while c < end and c != top:
            sz = u64(c + 8) & ~7
            if sz == 0 or c + sz > end:
                break
            in_use = (u64(c + sz + 8) & 1) == 1
            if not in_use or c in fast:
                free += sz
            elif sz >= 32 and u64(c + 24) == tcache_key:
                cached += sz
            else:
                used.append((c, sz))
            c += sz
    base = heaps[-1][0] if heaps else 0
    total = sum(s for _, s in heaps)
    out.append('arena %x: %d heap(s), %.2f MB, top chunk %.2f MB; in use %.2f MB in %d chunks, free %.2f MB, '
               'in tcaches %.2f MB' % (address, len(heaps), total / 1048576, (u64(top + 8) & ~7) / 1048576,
                                       sum(s for _, s in used) / 1048576, len(used), free / 1048576, cached / 1048576))
    by_mib = {}
    for (c, sz) in used:
        by_mib[(c - base) >> 20] = by_mib.get((c - base) >> 20, 0) + sz
    out.append('  in use by MiB of the heap: ' + ' '.join('%d: %d KiB' % (k, v >> 10) for k, v in sorted(by_mib.items())))
    for (c, sz) in used[-SHOWN:]:
        word = u64(c + 16)
        name = symbol(word)
        if 'BackingStore' in name and '_Sp_counted' in name:
            # A shared_ptr's control block: its use count, then the BackingStore (vptr, buffer_start_, byte_length_).
            store = u64(c + 32)
            name += ' (uses %d; an ArrayBuffer of %d bytes)' % (u64(c + 24) & 0xffffffff, u64(store + 16))
        out.append('    +%.2f MiB %6d B  %s' % ((c - base) / 1048576, sz, name or '0x%x' % word))


def walk_main(arena, tcache_key, out):
    # The main thread's arena is brk's heap: one span from sbrk_base to its top chunk, read in one piece.
    start = (int(gdb.parse_and_eval('mp_.sbrk_base')) + 15) & ~15
    top = int(arena['top'])
    mem = inf.read_memory(start, top + 16 - start).tobytes()
    word = lambda off: int.from_bytes(mem[off:off + 8], 'little')
    fast = fastbin_chunks(arena)
    chunks = []
    c = 0
    while start + c < top:
        sz = word(c + 8) & ~7
        if sz == 0 or start + c + sz > top:
            break
        chunks.append((c, sz))
        c += sz
    used, free, cached = [], 0, 0
    for i, (c, sz) in enumerate(chunks):
        nxt = chunks[i + 1][0] if i + 1 < len(chunks) else top - start
        in_use = (word(nxt + 8) & 1) == 1
        if not in_use or (start + c) in fast:
            free += sz
        elif sz >= 32 and word(c + 24) == tcache_key:
            cached += sz
        else:
            used.append((c, sz))
    out.append('main arena (brk) %.2f MB, top chunk %.2f MB; in use %.2f MB in %d chunks, free %.2f MB, '
               'in tcaches %.2f MB' % ((top - start) / 1048576, (u64(top + 8) & ~7) / 1048576,
                                       sum(s for _, s in used) / 1048576, len(used), free / 1048576, cached / 1048576))
    by_mib = {}
    for (c, sz) in used:
        by_mib[c >> 20] = by_mib.get(c >> 20, 0) + sz
    out.append('  in use by MiB of the heap: ' + ' '.join('%d: %d KiB' % (k, v >> 10) for k, v in sorted(by_mib.items())))
    # What the chunks in use are, by the symbol their first word names (a vtable: a C++ object) and by size.
    names, sizes = {}, {}
    cache = {}
    # Only words that point into a mapped file (a vtable, a symbol) are looked up: gdb takes ~1 ms a look-up.
    files = []
    with open('/proc/%d/maps' % inf.pid) as maps:
        for line in maps:
            f = line.split()
            if len(f) >= 6 and f[5].startswith('/'):
                lo, hi = f[0].split('-')
                files.append((int(lo, 16), int(hi, 16)))
    for (c, sz) in used:
        w = word(c + 16)
        if w not in cache:
            cache[w] = symbol(w) if any(lo <= w < hi for lo, hi in files) else ''
        n = cache[w] or '-'
        k = names.setdefault(n, [0, 0])
        k[0] += 1
        k[1] += sz
        k = sizes.setdefault(sz, [0, 0])
        k[0] += 1
        k[1] += sz
    out.append('  in use by first word:')
    for n, (count, total) in sorted(names.items(), key=lambda kv: -kv[1][1])[:SHOWN]:
        out.append('    %8d KiB %7d x  %s' % (total >> 10, count, n))
    out.append('  in use by chunk size:')
    for sz, (count, total) in sorted(sizes.items(), key=lambda kv: -kv[1][1])[:SHOWN]:
        out.append('    %8d KiB %7d x %7d B' % (total >> 10, count, sz))
    # The highest chunks in use: brk's heap is given back only above the highest of them.
    out.append('  highest chunks in use:')
    for (c, sz) in used[-SHOWN:]:
        w = word(c + 16)
        out.append('    +%.2f MiB %6d B  %s  %s' % (c / 1048576, sz, cache.get(w) or '0x%x' % w,
                                                  mem[c + 16:c + 16 + min(sz - 16, 48)].hex()))


out = ['== %s' % os.environ.get('SLUICE_ARENAS_LABEL', '')]
tcache_key = int(gdb.parse_and_eval('tcache_key'))
main = gdb.parse_and_eval('main_arena')
walk_main(main, tcache_key, out)
arena = main['next']
while int(arena) != int(main.address):
    walk(arena.dereference(), tcache_key, out)
    arena = arena['next']
with open(os.environ['SLUICE_ARENAS_OUT'], 'a') as f:
    f.write('\n'.join(out) + '\n')
