import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';

/**
 * The USER/GROUP names the broker puts into forwarded INVOKEs. ubusd reads each peer's uid/gid with SO_PEERCRED;
 * node's net module cannot, so every client is reported as the broker process's own account.
 */
export function processIdentity(): { user: string; group: string; root: boolean } {
  const uid = process.getuid?.() ?? -1;
  const gid = process.getgid?.() ?? -1;
  let user = String(uid);
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep the number
  }
  return { user, group: groupName(gid), root: uid === 0 && gid === 0 };
}

function groupName(gid: number): string {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id !== undefined && Number(id) === gid) return name;
    }
  } catch {
    // unreadable /etc/group: fall through
  }
  return String(gid);
}
