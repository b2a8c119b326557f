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


out = ['== %s' % os.environ.get('SLUICE_ARENAS_LABEL', '')]
tcache_key = int(gdb.parse_and_eval('tcache_key'))
main = gdb.parse_and_eval('main_arena')
arena = main['next']
while int(arena) != int(main.address):
    walk(arena.dereference(), tcache_key, out)
    arena = arena['next']
with open(os.environ['SLUICE_ARENAS_OUT'], 'a') as f:
    f.write('\n'.join(out) + '\n')
