/**
 * Who is on the other end of a control-socket connection (issue 14.6): the peer's uid, for the
 * audit trail, instead of a bare "local".
 *
 * Node has no API for SO_PEERCRED or SCM_CREDENTIALS (nodejs/node#9046, nodejs/node#26495), and a
 * native addon for one getsockopt is a build dependency on every box. The kernel publishes the
 * same facts through sock_diag, which iproute2's `ss` (always installed on Debian) reads:
 *   1. our end's inode: /proc/self/fd/<fd> → `socket:[N]`;
 *   2. `ss -xpH`: the line whose local inode is N names the peer's inode P, and the line of P
 *      names the peer process (`users:(("eclor-edge",pid=1234,fd=3))`);
 *   3. /proc/<pid>/status: its real uid (`Uid:` line).
 * Step 2 sees the peer's process only when the agent may inspect it (same uid, or root /
 * CAP_SYS_PTRACE, as the systemd unit's agent may be configured): otherwise the peer is recorded
 * as `local:uid=unknown` — never guessed, never taken from what the client says about itself.
 * A lookup runs once per connection, bounded by MAX_CONNECTIONS, with a 2 s timeout.
 */
import { execFile } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import type { Socket } from "node:net";

export interface Peer {
  pid?: number;
  uid?: number;
}

/** `local:uid=1000` (or `local:uid=unknown`), the audit's who for this connection. */
export function peerWho(p: Peer): `local:${string}` {
  return `local:uid=${p.uid ?? "unknown"}`;
}

export async function peerOf(sock: Socket): Promise<Peer> {
  // libuv's handle keeps the fd; there is no public accessor (nodejs/node#14446).
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) return {};
  let inode: string;
  try {
    inode = /socket:\[(\d+)\]/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? "";
  } catch {
    return {};
  }
  if (!inode) return {};
  const table = await ssUnix();
  const peerInode = table.get(inode)?.peer;
  const pid = peerInode ? table.get(peerInode)?.pid : undefined;
  if (pid === undefined) return {};
  try {
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return { pid, ...(uid !== undefined ? { uid: Number(uid) } : {}) };
  } catch {
    return { pid };
  }
}

/** Unix sockets by local inode: the peer's inode and the owning pid when visible. */
function ssUnix(): Promise<Map<string, { peer: string; pid?: number }>> {
  return new Promise((resolve) => {
    execFile(
      "ss",
      ["-xpH"],
      { timeout: 2000, maxBuffer: 8 << 20, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } },
      (err, stdout) => {
        const out = new Map<string, { peer: string; pid?: number }>();
        if (err) return resolve(out);
        for (const line of stdout.split("\n")) {
          // Netid State Recv-Q Send-Q Local Port Peer Port [users:((…))]
          const t = line.trim().split(/\s+/);
          if (t.length < 8) continue;
          const pid = /pid=(\d+)/.exec(line)?.[1];
          out.set(t[5]!, { peer: t[7]!, ...(pid ? { pid: Number(pid) } : {}) });
        }
        resolve(out);
      },
    );
  });
}
