/**
 * A fast simulated Modbus server. It is the protocol peer of the driver's tests, so it frames
 * requests itself — MBAP over TCP (Modbus Messaging on TCP/IP V1.0b §3.1.3), address + PDU +
 * CRC over a serial line or a raw TCP socket (Modbus over Serial Line V1.02 §2.5.1) — and
 * answers synchronously in the data handler (modbus-serial's ServerTCP answers after a timer
 * tick, ~800 requests/s: too slow for a benchmark).
 *
 * Faults are set per unit at any time: no answer, late answer, exception, corrupt CRC (on TCP,
 * where there is no CRC, a truncated PDU), answer from the wrong unit id, line noise before a
 * valid RTU answer (bytes that look like the start of a frame; on TCP answered normally).
 */
import { createServer, type Server, type Socket } from "node:net";
import { SerialPort } from "serialport";
import { crc16, handlePdu, RegisterBank, type SimUnit, type UnitBehaviour } from "./pdu.js";

export type Fault =
  | { kind: "none" }
  | { kind: "no_answer" }
  | { kind: "late"; delayMs: number }
  | { kind: "exception"; code: number }
  | { kind: "bad_crc" }
  | { kind: "wrong_unit" }
  | { kind: "noise" };

export const faultKinds = [
  "none",
  "no_answer",
  "late",
  "exception",
  "busy",
  "illegal_address",
  "bad_crc",
  "wrong_unit",
  "noise",
] as const;

/** Parse "no_answer", "late:2000", "exception:6", "busy", "illegal_address", "bad_crc"… */
export function parseFault(text: string): Fault {
  const [kind, arg] = text.split(":");
  switch (kind) {
    case "none":
    case "no_answer":
    case "bad_crc":
    case "wrong_unit":
    case "noise":
      return { kind };
    case "late": {
      const delayMs = Number(arg ?? 2000);
      if (!Number.isFinite(delayMs) || delayMs < 0)
        throw new Error(`late:MS needs a delay in ms, got "${arg}"`);
      return { kind, delayMs };
    }
    case "exception": {
      const code = Number(arg);
      if (!Number.isInteger(code) || code < 1 || code > 255)
        throw new Error(`exception:CODE needs a code 1..255, got "${arg}"`);
      return { kind, code };
    }
    case "busy":
      return { kind: "exception", code: 6 };
    case "illegal_address":
      return { kind: "exception", code: 2 };
    case undefined:
    default:
      throw new Error(
        `unknown fault "${text}": expected one of ${faultKinds.join(", ")} (late:MS, exception:CODE)`,
      );
  }
}

type Frame = "mbap" | "rtu";

export class ModbusSimulator {
  readonly units = new Map<number, SimUnit>();
  private readonly faults = new Map<number, Fault>();
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly serials: SerialPort[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private ticker: NodeJS.Timeout | undefined;
  private last = Date.now();
  /** Requests answered (or deliberately not), all units. */
  requests = 0;

  addUnit(
    id: number,
    behaviour: UnitBehaviour = {},
    opts: { strict?: boolean; bank?: RegisterBank } = {},
  ): SimUnit {
    const unit: SimUnit = {
      bank: opts.bank ?? new RegisterBank(),
      strict: opts.strict ?? false,
      behaviour,
      requests: 0,
      functions: new Map(),
    };
    this.units.set(id, unit);
    return unit;
  }

  unit(id: number): SimUnit {
    const u = this.units.get(id);
    if (!u) throw new Error(`no simulated unit ${id}`);
    return u;
  }

  setFault(unit: number, fault: Fault): void {
    if (fault.kind === "none") this.faults.delete(unit);
    else this.faults.set(unit, fault);
  }

  /** Start moving values (energy counters, noise) about once a second. */
  startTicking(periodMs = 1000): void {
    this.last = Date.now();
    this.ticker = setInterval(() => {
      const now = Date.now();
      for (const u of this.units.values()) u.behaviour.tick?.(now - this.last);
      this.last = now;
    }, periodMs);
    this.ticker.unref();
  }

  /** Modbus TCP (MBAP). Resolves with the bound port (pass 0 for any free port). */
  listenTcp(port: number, host = "127.0.0.1", frame: Frame = "mbap"): Promise<number> {
    const server = createServer((sock) => this.attach(sock, frame));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        const a = server.address();
        resolve(typeof a === "object" && a ? a.port : port);
      });
    });
  }

  /** RTU frames over raw TCP, as a serial server (Moxa/USR "TCP server" mode) passes them. */
  listenRtuOverTcp(port: number, host = "127.0.0.1"): Promise<number> {
    return this.listenTcp(port, host, "rtu");
  }

  /** RTU on a serial line (a real port or one end of a socat pty pair). */
  async openSerial(path: string, baudRate = 9600): Promise<void> {
    const sp = new SerialPort({ path, baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) => sp.open((e) => (e ? reject(e) : resolve())));
    this.serials.push(sp);
    let buf: Buffer = Buffer.alloc(0);
    sp.on("data", (d: Buffer) => {
      buf = this.onRtu(buf.length ? Buffer.concat([buf, d]) : d, (out) => sp.write(out));
    });
    sp.on("error", () => {});
  }

  private attach(sock: Socket, frame: Frame): void {
    this.sockets.add(sock);
    sock.setNoDelay(true);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    const send = (out: Buffer) => {
      if (!sock.destroyed) sock.write(out);
    };
    sock.on("data", (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      buf = frame === "mbap" ? this.onMbap(buf, send, sock) : this.onRtu(buf, send);
    });
  }

  /** Consume complete MBAP frames; returns the unconsumed rest. */
  private onMbap(buf: Buffer, send: (b: Buffer) => void, sock: Socket): Buffer {
    let off = 0;
    while (buf.length - off >= 8) {
      const len = buf.readUInt16BE(off + 4);
      if (buf.readUInt16BE(off + 2) !== 0 || len < 2 || len > 254) {
        sock.destroy(); // not Modbus: a real server drops the connection (MBAP §4.4.1.1)
        return Buffer.alloc(0);
      }
      if (buf.length - off < 6 + len) break;
      const tid = buf.readUInt16BE(off);
      const unitId = buf[off + 6]!;
      const pdu = buf.subarray(off + 7, off + 6 + len);
      off += 6 + len;
      this.serve(unitId, pdu, (uid, resp, corrupt) => {
        const body = corrupt ? resp.subarray(0, resp.length - 1) : resp;
        const out = Buffer.allocUnsafe(7 + body.length);
        out.writeUInt16BE(tid, 0);
        out.writeUInt16BE(0, 2);
        out.writeUInt16BE(body.length + 1, 4);
        out[6] = uid;
        body.copy(out, 7);
        send(out);
      });
    }
    return off === 0 ? buf : buf.subarray(off);
  }

  /** Consume complete RTU request frames (lengths known per function code). */
  private onRtu(buf: Buffer, send: (b: Buffer) => void): Buffer {
    let off = 0;
    while (buf.length - off >= 8) {
      const fc = buf[off + 1]!;
      let len = 8;
      if (fc === 15 || fc === 16) {
        if (buf.length - off < 7) break;
        len = 9 + buf[off + 6]!;
      } else if (fc < 1 || fc > 6) len = buf.length - off; // unknown function: take what came
      if (buf.length - off < len) break;
      const frame = buf.subarray(off, off + len);
      if (crc16(frame, len - 2) !== frame.readUInt16LE(len - 2)) {
        // A real server discards a frame with a bad CRC and waits for silence: drop the buffer.
        return Buffer.alloc(0);
      }
      off += len;
      const unitId = frame[0]!;
      if (unitId === 0) {
        // Broadcast: executed, never answered (Modbus over Serial Line §2.1).
        for (const u of this.units.values()) handlePdu(u, Buffer.from(frame.subarray(1, len - 2)));
        continue;
      }
      this.serve(unitId, frame.subarray(1, len - 2), (uid, resp, corrupt, noise) => {
        const out = Buffer.allocUnsafe(resp.length + 3);
        out[0] = uid;
        resp.copy(out, 1);
        const crc = crc16(out, resp.length + 1);
        out.writeUInt16LE(corrupt ? crc ^ 0xffff : crc, resp.length + 1);
        // Noise that starts like this answer (unit, function, a byte count) before the answer.
        if (noise) send(Buffer.from([0x00, 0xff, uid, resp[0]!, 0x04, 0x17]));
        send(out);
      });
    }
    return off === 0 ? buf : buf.subarray(off);
  }

  private serve(
    unitId: number,
    pdu: Buffer,
    reply: (unit: number, resp: Buffer, corrupt: boolean, noise?: boolean) => void,
  ): void {
    const unit = this.units.get(unitId);
    if (!unit) return; // nobody at this address: silence, as on a real bus
    this.requests++;
    const fault = this.faults.get(unitId);
    if (!fault) return reply(unitId, handlePdu(unit, pdu), false);
    switch (fault.kind) {
      case "none":
        return reply(unitId, handlePdu(unit, pdu), false);
      case "no_answer":
        return;
      case "exception":
        return reply(unitId, Buffer.from([pdu[0]! | 0x80, fault.code]), false);
      case "bad_crc":
        return reply(unitId, handlePdu(unit, pdu), true);
      case "wrong_unit":
        return reply((unitId % 247) + 1, handlePdu(unit, pdu), false);
      case "noise":
        return reply(unitId, handlePdu(unit, pdu), false, true);
      case "late": {
        const resp = handlePdu(unit, Buffer.from(pdu));
        const t = setTimeout(() => {
          this.timers.delete(t);
          reply(unitId, resp, false);
        }, fault.delayMs);
        this.timers.add(t);
        return;
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.ticker);
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await Promise.all(
      this.servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))),
    );
    await Promise.all(
      this.serials
        .splice(0)
        .map((sp) => new Promise<void>((r) => (sp.isOpen ? sp.close(() => r()) : r()))),
    );
  }
}
