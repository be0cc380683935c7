/**
 * A rogue Modbus TCP slave for the driver's robustness tests. It frames MBAP itself (Modbus
 * Messaging on TCP/IP V1.0b §3.1.3), answers FC 3 for any unit with register value
 * `unit * 1000 + address`, and while a fault is set sends the answers of `faultUnit` malformed
 * in one of the ways below — the ways real gateways and broken firmware do, one kind at a time.
 */
import { createServer, type Server, type Socket } from "node:net";

export const framingFaults = [
  "truncated", // the PDU cut short, nothing more ever comes
  "length_too_large", // MBAP length promises more bytes than are sent
  "trailing", // a valid answer followed by stray bytes
  "garbage", // random bytes instead of an answer
  "trickle", // a valid answer, one byte at a time, slower than the timeout
  "stalled", // this session never answers again; new connections are served
] as const;
export const validationFaults = [
  "protocol_id", // MBAP protocol id 1
  "transaction_id", // an answer with another transaction id
  "short_byte_count", // byte count smaller than asked (and the data to match)
  "oversized_byte_count", // byte count larger than the data that follows
  "wrong_unit", // answered by another unit id
  "wrong_function", // answer to FC 4 instead of FC 3
] as const;
export type RogueFault = (typeof framingFaults)[number] | (typeof validationFaults)[number];

function mbap(tid: number, unit: number, pdu: Buffer, pid = 0, len = pdu.length + 1): Buffer {
  const out = Buffer.alloc(7 + pdu.length);
  out.writeUInt16BE(tid, 0);
  out.writeUInt16BE(pid, 2);
  out.writeUInt16BE(len, 4);
  out[6] = unit;
  pdu.copy(out, 7);
  return out;
}

function registers(fc: number, unit: number, address: number, count: number): Buffer {
  const pdu = Buffer.alloc(2 + 2 * count);
  pdu[0] = fc;
  pdu[1] = 2 * count;
  for (let i = 0; i < count; i++)
    pdu.writeUInt16BE((unit * 1000 + address + i) & 0xffff, 2 + 2 * i);
  return pdu;
}

export class RogueSlave {
  fault: RogueFault | undefined;
  faultUnit = 2;
  /** Requests received, and faulty answers sent. */
  requests = 0;
  faulted = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly stalled = new WeakSet<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  async listen(): Promise<number> {
    const server = createServer((s) => this.attach(s));
    this.server = server;
    return new Promise((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
    );
  }

  private attach(sock: Socket): void {
    this.sockets.add(sock);
    sock.setNoDelay(true);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 12) {
        const len = buf.readUInt16BE(4);
        if (buf.length < 6 + len) break;
        const frame = buf.subarray(0, 6 + len);
        buf = buf.subarray(6 + len);
        this.answer(sock, frame);
      }
    });
  }

  private answer(sock: Socket, req: Buffer): void {
    this.requests++;
    if (this.stalled.has(sock)) return;
    const tid = req.readUInt16BE(0);
    const unit = req[6]!;
    const fc = req[7]!;
    const address = req.readUInt16BE(8);
    const count = req.readUInt16BE(10);
    const send = (b: Buffer) => !sock.destroyed && sock.write(b);
    const good = mbap(tid, unit, registers(fc, unit, address, count));
    if (this.fault === undefined || unit !== this.faultUnit) return void send(good);
    this.faulted++;
    switch (this.fault) {
      case "truncated":
        return void send(good.subarray(0, good.length - 3));
      case "length_too_large":
        return void send(mbap(tid, unit, registers(fc, unit, address, count), 0, 2 * count + 40));
      case "trailing":
        return void send(Buffer.concat([good, Buffer.from([0x00, 0x01, 0x00])]));
      case "garbage":
        return void send(Buffer.from("\x13\x37HTTP/1.1 400 Bad Request\r\n\r\n", "latin1"));
      case "trickle": {
        let i = 0;
        const t = setInterval(() => {
          if (i >= good.length || sock.destroyed) {
            clearInterval(t);
            this.timers.delete(t);
            return;
          }
          sock.write(good.subarray(i, ++i));
        }, 150);
        this.timers.add(t);
        return;
      }
      case "stalled":
        this.stalled.add(sock);
        return;
      case "protocol_id":
        return void send(mbap(tid, unit, registers(fc, unit, address, count), 1));
      case "transaction_id":
        return void send(mbap((tid + 7) & 0xffff, unit, registers(fc, unit, address, count)));
      case "short_byte_count":
        return void send(mbap(tid, unit, registers(fc, unit, address, Math.max(1, count - 1))));
      case "oversized_byte_count": {
        const pdu = registers(fc, unit, address, count);
        pdu[1] = 250;
        return void send(mbap(tid, unit, pdu));
      }
      case "wrong_unit":
        return void send(mbap(tid, unit + 1, registers(fc, unit, address, count)));
      case "wrong_function":
        return void send(mbap(tid, unit, registers(fc === 3 ? 4 : 3, unit, address, count)));
    }
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
