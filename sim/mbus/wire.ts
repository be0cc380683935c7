/**
 * The simulator's own M-Bus link layer (EN 13757-2 / EN 60870-5-2 FT1.2), written apart from
 * drivers/mbus/frame.ts on purpose (issue 19.8): a bug in the driver's framing must not be
 * written twice and cancel out. Frames: E5 (ACK), short 10 C A CS 16, long 68 L L 68 C A CI …
 * CS 16 with CS = sum of C..data modulo 256.
 */

export const SIM_ACK = 0xe5;
/** Control fields the meter side cares about (EN 13757-2 table 4). */
export const SIM_C = { SND_NKE: 0x40, SND_UD: 0x53, REQ_UD2: 0x5b, RSP_UD: 0x08, FCB: 0x20 };
export const SIM_SELECTED = 0xfd;
export const SIM_CI_SELECT = 0x52;

export type SimFrame =
  | { kind: "ack" }
  | { kind: "short"; control: number; address: number }
  | { kind: "long"; control: number; address: number; ci: number; data: Buffer };

function checksum(bytes: Uint8Array): number {
  return bytes.reduce((s, b) => (s + b) & 0xff, 0);
}

/** A long frame around C, A, CI and user data (at most 252 bytes, L is one byte). */
export function simLongFrame(control: number, address: number, ci: number, data: Buffer): Buffer {
  if (data.length > 252) throw new Error(`M-Bus telegram of ${data.length} bytes (max 252)`);
  const body = Buffer.concat([Buffer.from([control, address, ci]), data]);
  return Buffer.concat([
    Buffer.from([0x68, body.length, body.length, 0x68]),
    body,
    Buffer.from([checksum(body), 0x16]),
  ]);
}

/**
 * Takes one request off the front of `buf`: a frame, `need` (wait for more bytes), or `skip`
 * (noise or a broken frame: drop that many bytes). The meter side only has to understand what a
 * master sends; it does not report why a frame was dropped.
 */
export function simNextFrame(
  buf: Buffer,
): { frame: SimFrame; used: number } | { need: true } | { skip: number } {
  if (buf.length === 0) return { need: true };
  const b0 = buf[0];
  if (b0 === SIM_ACK) return { frame: { kind: "ack" }, used: 1 };
  if (b0 === 0x10) {
    if (buf.length < 5) return { need: true };
    if (buf[4] !== 0x16 || checksum(buf.subarray(1, 3)) !== buf[3]) return { skip: 1 };
    return { frame: { kind: "short", control: buf[1]!, address: buf[2]! }, used: 5 };
  }
  if (b0 === 0x68) {
    if (buf.length < 4) return { need: true };
    const len = buf[1]!;
    if (buf[2] !== len || buf[3] !== 0x68 || len < 3) return { skip: 1 };
    if (buf.length < len + 6) return { need: true };
    const body = buf.subarray(4, 4 + len);
    if (buf[4 + len] !== checksum(body) || buf[5 + len] !== 0x16) return { skip: 1 };
    return {
      frame: {
        kind: "long",
        control: body[0]!,
        address: body[1]!,
        ci: body[2]!,
        data: Buffer.from(body.subarray(3)),
      },
      used: len + 6,
    };
  }
  return { skip: 1 };
}

/** One complete long frame from a file (the replayed corpus frames), or a clear error. */
export function simParseLong(bytes: Buffer): Extract<SimFrame, { kind: "long" }> {
  const r = simNextFrame(bytes);
  if (!("frame" in r) || r.frame.kind !== "long" || r.used !== bytes.length)
    throw new Error("a replayed M-Bus frame must be exactly one long frame with a valid checksum");
  return r.frame;
}

/** "68 1F 1F 68 …" → bytes (whitespace ignored). */
export function simHex(text: string): Buffer {
  const clean = text.replace(/\s+/g, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(clean))
    throw new Error("hex text has an odd number of digits or non-hex characters");
  return Buffer.from(clean, "hex");
}

/** FLAG manufacturer code: three letters A–Z, 5 bits each (EN 13757-3 §6.3.2). */
export function simManufacturer(code: string): number {
  if (!/^[A-Z]{3}$/.test(code)) throw new Error(`manufacturer "${code}" is not 3 letters A-Z`);
  return [...code].reduce((m, c) => (m << 5) | (c.charCodeAt(0) - 64), 0);
}
