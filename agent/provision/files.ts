/**
 * Durable files of the enrolment state machine. Every write is atomic (temporary file, fsync,
 * rename, fsync of the directory) so that a power cut leaves either the old or the new file,
 * never a torn one: the state machine resumes from whatever files exist.
 */
import {
  chownSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";

/** Layout of `<state_dir>/provision/` (documented in docs/operations.md). */
export interface ProvisionPaths {
  dir: string;
  state: string;
  bundle: string;
  key: string;
  csr: string;
  request: string;
  cert: string;
  ca: string;
  config: string;
  /** Renewal works in its own sub-directory and only replaces key/cert once the new pair works. */
  renewDir: string;
  renewKey: string;
  renewCsr: string;
  renewRequest: string;
  renewCert: string;
}

export function provisionPaths(stateDir: string): ProvisionPaths {
  const dir = join(stateDir, "provision");
  const renewDir = join(dir, "renew");
  return {
    dir,
    state: join(dir, "state.json"),
    bundle: join(dir, "bundle.yaml"),
    key: join(dir, "key.pem"),
    csr: join(dir, "csr.pem"),
    request: join(dir, "request.json"),
    cert: join(dir, "cert.pem"),
    ca: join(dir, "ca.pem"),
    config: join(dir, "config.yaml"),
    renewDir,
    renewKey: join(renewDir, "key.pem"),
    renewCsr: join(renewDir, "csr.pem"),
    renewRequest: join(renewDir, "request.json"),
    renewCert: join(renewDir, "cert.pem"),
  };
}

export function ensureDir(dir: string): void {
  // 0700: the directory holds the private key; nobody else needs to list it.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems (e.g. FAT boot partitions) refuse fsync on directories; the rename is
    // still atomic there, only its durability is weaker.
  }
}

/** Write `data` to `path` atomically with the given mode (0600 for secrets). */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const dir = dirname(path);
  ensureDir(dir);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dir);
}

export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
}

/** Atomically move `from` over `to` (same directory tree, same filesystem). */
export function moveFile(from: string, to: string): void {
  renameSync(from, to);
  fsyncDir(dirname(to));
}

export { existsSync };

/**
 * `eclor-edge provision` run by root (sudo) on a box whose state directory belongs to the
 * service user: hand the provisioning files to that user, or the agent could not read its key.
 */
export function matchStateDirOwner(stateDir: string): void {
  if (process.getuid?.() !== 0) return;
  let owner: { uid: number; gid: number };
  try {
    owner = statSync(stateDir);
  } catch {
    return;
  }
  if (owner.uid === 0) return;
  const walk = (p: string) => {
    chownSync(p, owner.uid, owner.gid);
    if (statSync(p).isDirectory()) for (const f of readdirSync(p)) walk(join(p, f));
  };
  const dir = provisionPaths(stateDir).dir;
  if (existsSync(dir)) walk(dir);
}
