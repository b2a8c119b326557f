"""offload-peer.py - both ends of offload.sh's traffic (python3, stdlib only).

  server IP                     TCP and UDP on port 9000: `down N` sends N bytes, `up N` reads N bytes
  ping IP                       exits 0 once the server answers
  client IP PROTO DIR N [SECS]  moves N bytes (or until SECS), prints the IP-level bytes the client's eth0 received
                                and sent meanwhile (its own counters less 14 bytes a frame)
  stream IP PROTO DIR SECS LOG  moves data until SECS or the connection ends, writing `<unix time> <rx> <tx>` (IP-level
                                bytes since its start) every 20 ms to LOG, and last `end <how>`: `reset` (the
                                connection was reset), `closed`, `timeout`, `error <name>`
  rates LOG DEV...              writes `<unix time> <tx bytes of each DEV>` every 20 ms to LOG until killed
"""
import socket, sys, threading, time

PORT = 9000


def serve_tcp(ip):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((ip, PORT)); s.listen(8)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()


def tcp_conn(c):
    try:
        f = c.makefile('rb'); cmd, n = f.readline().split(); n = int(n)
        if cmd == b'down':
            chunk = b'x' * 65536
            while n > 0:
                k = c.send(chunk[:min(n, 65536)]); n -= k
        else:
            while n > 0:
                d = c.recv(65536)
                if not d: break
                n -= len(d)
            c.send(b'ok')
    except OSError:
        pass
    finally:
        c.close()


def serve_udp(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((ip, PORT))
    while True:
        d, a = s.recvfrom(2048)
        if d.startswith(b'down '):
            n = int(d.split()[1])
            while n > 0:
                try: s.sendto(b'x' * min(n, 1400), a)
                except OSError: pass
                n -= 1400
                if n % (1400 * 64) == 0: time.sleep(0.001)


def stat(name):
    with open('/sys/class/net/eth0/statistics/' + name) as f:
        return int(f.read())


def ip_bytes(d):
    return stat(d + '_bytes') - 14 * stat(d + '_packets')


def client(ip, proto, d, n, secs):
    before = {k: ip_bytes(k) for k in ('rx', 'tx')}
    end = time.time() + secs
    if proto == 'tcp':
        c = socket.create_connection((ip, PORT), timeout=5); c.settimeout(secs)
        c.send(f'{d} {n}\n'.encode())
        try:
            if d == 'down':
                while time.time() < end:
                    b = c.recv(65536)
                    if not b: break
            else:
                chunk = b'x' * 65536; left = n
                while left > 0 and time.time() < end:
                    left -= c.send(chunk[:min(left, 65536)])
                c.recv(2)
        except OSError:
            pass
        c.close()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20); s.connect((ip, PORT)); s.settimeout(2)
        if d == 'down':
            s.send(f'down {n}'.encode())
            try:
                while time.time() < end: s.recv(2048)
            except OSError:
                pass
        else:
            left = n
            while left > 0:
                s.send(b'x' * min(left, 1400)); left -= 1400
                if left % (1400 * 64) == 0: time.sleep(0.001)
            time.sleep(0.5)
    time.sleep(0.3)
    moved = {k: ip_bytes(k) - before[k] for k in ('rx', 'tx')}
    print(moved['rx'], moved['tx'])


def stream(ip, proto, d, secs, log):
    base = {k: ip_bytes(k) for k in ('rx', 'tx')}
    out = open(log, 'w', buffering=1)
    done = threading.Event()

    def sample():
        while not done.is_set():
            out.write(f"{time.time():.3f} {ip_bytes('rx') - base['rx']} {ip_bytes('tx') - base['tx']}\n")
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    end = time.time() + secs
    how = 'timeout'
    try:
        if proto == 'tcp':
            c = socket.create_connection((ip, PORT), timeout=5); c.settimeout(1)
            c.send(f'{d} {1 << 40}\n'.encode())
            chunk = b'x' * 65536
            while time.time() < end:
                try:
                    if d == 'down':
                        if not c.recv(65536): how = 'closed'; break
                    else:
                        c.send(chunk)
                except socket.timeout:
                    pass
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20); s.connect((ip, PORT)); s.settimeout(0.2)
            if d == 'down':
                s.send(b'down 89600000000')  # a multiple of the server's 64-datagram pacing
            sent = 0
            while time.time() < end:
                try:
                    if d == 'down':
                        s.recv(2048)
                    else:
                        s.send(b'x' * 1400); sent += 1
                        if sent % 64 == 0: time.sleep(0.001)
                except socket.timeout:
                    pass
    except ConnectionResetError:
        how = 'reset'
    except OSError as e:
        how = f'error {type(e).__name__}'
    time.sleep(0.1)
    done.set()
    time.sleep(0.05)
    out.write(f'end {how}\n')
    out.close()


def rates(log, devs):
    out = open(log, 'w', buffering=1)
    files = [open(f'/sys/class/net/{d}/statistics/tx_bytes') for d in devs]
    while True:
        now = time.time()
        values = []
        for f in files:
            f.seek(0); values.append(f.read().strip())
        out.write(f"{now:.3f} {' '.join(values)}\n")
        time.sleep(0.02)


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'server':
        threading.Thread(target=serve_udp, args=(sys.argv[2],), daemon=True).start()
        serve_tcp(sys.argv[2])
    elif cmd == 'ping':
        try:
            socket.create_connection((sys.argv[2], PORT), timeout=1).close()
        except OSError:
            sys.exit(1)
    elif cmd == 'rates':
        rates(sys.argv[2], sys.argv[3:])
    elif cmd == 'stream':
        stream(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6])
    else:
        ip, proto, d, n = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
        client(ip, proto, d, n, float(sys.argv[6]) if len(sys.argv) > 6 else 30)
