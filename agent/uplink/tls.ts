/**
 * TLS material for the uplink: files are read at each connection attempt (a renewed certificate
 * is picked up on the next reconnect), and a missing or unreadable file is a clear error naming
 * the config field instead of a cryptic handshake failure.
 */
import { readFileSync } from "node:fs";
import type { UplinkConfig } from "../../config/schema.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";

export interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

export function loadTls(tls: UplinkConfig["tls"]): TlsOptions | undefined {
  if (!tls) return undefined;
  const read = (field: "ca" | "cert" | "key"): Buffer | undefined => {
    const path = tls[field];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why =
        code === "ENOENT"
          ? "does not exist"
          : code === "EACCES"
            ? "is not readable by this user"
            : String(e);
      throw new EdgeError(
        ErrorCode.UplinkTls,
        `uplink.tls.${field}: ${path} ${why} — fix the path or the file's permissions`,
        { field, path },
      );
    }
  };
  const out: TlsOptions = { rejectUnauthorized: tls.reject_unauthorized };
  const ca = read("ca");
  const cert = read("cert");
  const key = read("key");
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  if ((cert === undefined) !== (key === undefined)) {
    throw new EdgeError(
      ErrorCode.UplinkTls,
      "uplink.tls: cert and key go together for mTLS — set both or neither",
      { field: cert ? "key" : "cert" },
    );
  }
  if (tls.servername !== undefined) out.servername = tls.servername;
  return out;
}

/** Classify a connection error into a message a technician can act on. */
export function describeConnectError(e: unknown, url: string): EdgeError {
  const err = e as { code?: string | number; message?: string };
  const code = typeof err.code === "string" ? err.code : "";
  const msg = err.message ?? String(e);
  const tlsUrl = /^(mqtts|ssl|wss):/.test(url);
  if (/ERR_SSL|ERR_TLS|CERT|certificate|alert|SSL routines|self.signed/i.test(code + " " + msg)) {
    return new EdgeError(
      ErrorCode.UplinkTls,
      `TLS handshake with ${url} failed: ${msg} — check uplink.tls.ca (the broker's CA), and for mTLS uplink.tls.cert/key (a certificate the broker does not trust is refused with "unknown ca" / "certificate unknown"); readings stay buffered in the store`,
      { url, code },
    );
  }
  const rc = typeof err.code === "number" ? err.code : undefined;
  if (
    rc === 134 ||
    rc === 135 ||
    rc === 4 ||
    rc === 5 ||
    /Not authorized|Bad User Name or Password/i.test(msg)
  ) {
    return new EdgeError(
      ErrorCode.UplinkAuth,
      `broker ${url} refused the connection: ${msg} — check uplink.username/password (or the client certificate) and the broker's ACL; readings stay buffered in the store`,
      { url, code: err.code },
    );
  }
  const hint =
    code === "ECONNREFUSED"
      ? "nothing listens there (broker down or wrong port)"
      : code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? "the host name does not resolve (DNS, or a typo in uplink.url)"
        : code === "ECONNRESET" && tlsUrl
          ? "the broker closed the TLS connection — often a client certificate it does not accept (uplink.tls.cert/key)"
          : "the broker is unreachable";
  return new EdgeError(
    code === "ECONNRESET" && tlsUrl ? ErrorCode.UplinkTls : ErrorCode.UplinkConnect,
    `cannot connect to ${url}: ${msg} — ${hint}; retrying with backoff, readings stay buffered in the store`,
    { url, code },
  );
}
