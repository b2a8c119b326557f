/**
 * files/etc/init.d/sluice's RFC 8910 announcement (sluice_dhcp_announce) run by a real sh, with /etc/rc.common's
 * helpers stubbed and uci replaced by a stand-in that keeps /etc/config/dhcp's `lan` section in a file and applies
 * `uci batch` lines to it: the unit test's subject and the source of what the e2e lab's dnsmasq announces.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INIT = new URL('../../files/etc/init.d/sluice', import.meta.url).pathname;

/** /etc/config/dhcp as `key=value` lines (a list's items one line each), what the stand-in uci reads and writes. */
export type Dhcp = string[];

export interface Run {
  dhcp: Dhcp;
  /** logger's lines, uci's commits and the DHCP servers' reload. */
  calls: string[];
}

/**
 * Sources the script with /etc/rc.common's helpers stubbed and runs sluice_dhcp_announce with `main.portal` and
 * `http.portal_url` as given, on `dhcp`.
 */
export function announce(portal: string, portalUrl: string, dhcp: Dhcp): Run {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-announce-'));
  try {
    writeFileSync(join(dir, 'dhcp'), dhcp.map((l) => `${l}\n`).join(''));
    // A uci for dhcp.lan's options: get (a list's items joined by spaces), and batch's set/add_list/del_list/delete.
    const stubs = `
D='${dir}'
note() { printf '|%s' "$*" >> "$D/calls"; }
config_get() {
  case "$2.$3" in
    main.portal) eval "$1='${portal}'" ;;
    http.portal_url) eval "$1='${portalUrl}'" ;;
    *) eval "$1=\\$4" ;;
  esac
}
logger() { note "logger $*"; }
uci() {
  [ "$1" = -q ] && shift
  case "$1" in
    get)
      if [ "$2" = dhcp.lan ]; then grep -q '^lan=' "$D/dhcp" && echo dhcp; return; fi
      k="\${2#dhcp.lan.}"; v="$(sed -n "s/^$k=//p" "$D/dhcp" | tr '\\n' ' ')"; [ -n "$v" ] && echo "\${v% }" ;;
    batch)
      while IFS= read -r line; do
        set -- $line; op=$1; rest="\${line#* }"; key="\${rest%%=*}"; key="\${key#dhcp.lan.}"
        val="\${rest#*=}"; val="\${val#\\'}"; val="\${val%\\'}"
        case "$op" in
          set) grep -v "^$key=" "$D/dhcp" > "$D/t"; echo "$key=$val" >> "$D/t"; mv "$D/t" "$D/dhcp" ;;
          add_list) echo "$key=$val" >> "$D/dhcp" ;;
          del_list) grep -vxF "$key=$val" "$D/dhcp" > "$D/t"; mv "$D/t" "$D/dhcp" ;;
          delete) grep -v "^$key=" "$D/dhcp" > "$D/t"; mv "$D/t" "$D/dhcp" ;;
          commit) note "commit $rest" ;;
        esac
      done ;;
  esac
}
`;
    const script = `${stubs}\n. '${INIT}'\nsluice_dhcp_reload() { note reload; }\nsluice_dhcp_announce`;
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`sluice_dhcp_announce exited ${r.status}: ${r.stderr}`);
    const calls = (() => {
      try {
        return readFileSync(join(dir, 'calls'), 'utf8').split('|').filter(Boolean);
      } catch {
        return [];
      }
    })();
    return { dhcp: readFileSync(join(dir, 'dhcp'), 'utf8').split('\n').filter(Boolean), calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
