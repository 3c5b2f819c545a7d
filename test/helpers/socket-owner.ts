/**
 * Which of some local processes holds a TCP connection to 127.0.0.1, read from /proc (Linux):
 * the connection's inode from /proc/net/tcp, then the process whose file descriptors include
 * that socket. Diagnostics only (the fault suite names the instance that made each call); on
 * another system, or once the connection has closed, the answer is undefined.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Socket inode → owner: a kept-alive connection is looked up once. */
const owners = new Map<string, string>();

const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");

/** The inode of the IPv4 socket whose local port is `from` and remote port is `to`. */
function socketInode(from: number, to: number): string | undefined {
  let table: string;
  try {
    table = readFileSync("/proc/net/tcp", "utf8");
  } catch {
    return undefined;
  }
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    if (fields[1]?.endsWith(`:${hexPort(from)}`) && fields[2]?.endsWith(`:${hexPort(to)}`))
      return fields[9];
  }
  return undefined;
}

/**
 * The name of the process (of `processes`) whose socket connects from local port `from` to
 * local port `to`, or undefined.
 */
export function connectionOwner(
  from: number,
  to: number,
  processes: readonly { readonly name: string; readonly pid: number | undefined }[],
): string | undefined {
  const inode = socketInode(from, to);
  if (!inode) return undefined;
  const known = owners.get(inode);
  if (known) return known;
  const wanted = `socket:[${inode}]`;
  for (const { name, pid } of processes) {
    if (pid === undefined) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === wanted) {
          owners.set(inode, name);
          return name;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
