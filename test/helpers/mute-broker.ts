/**
 * A minimal MQTT 5 responder over raw TCP, for the one broker behaviour Mosquitto cannot be made
 * to show: a broker that keeps the link alive (CONNACK, SUBACK, PINGRESP) but never sends PUBACK
 * (issue 15 item 5). Written from the MQTT 5.0 spec (OASIS, §2.1 fixed header, §2.1.4 variable
 * byte integer, §3.2 CONNACK, §3.4 PUBACK, §3.9 SUBACK, §3.13 PINGRESP), not from a library, so
 * the test does not share code with the client it tests. `ackFrom` = the first connection number
 * (1-based) whose QoS 1 PUBLISHes are acknowledged; earlier connections get none. `hold`
 * withholds chosen PUBACKs until `release()`, so acknowledgements arrive out of order.
 */
import { createServer, type Server, type Socket } from "node:net";

export interface Published {
  connection: number;
  topic: string;
  payload: Buffer;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** Read a variable byte integer at `at`: [value, bytes used] or undefined if incomplete. */
function readVarint(buf: Buffer, at: number): [number, number] | undefined {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 4; i++) {
    if (at + i >= buf.length) return undefined;
    const b = buf[at + i]!;
    value += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return [value, i + 1];
    mult *= 128;
  }
  throw new Error("malformed variable byte integer");
}

export class MuteBroker {
  connections = 0;
  pingreqs = 0;
  readonly published: Published[] = [];
  /** Return true to withhold the PUBACK of this publish until `release()`. */
  hold?: (p: Published, indexOnTopic: number) => boolean;
  private readonly held: { sock: Socket; ack: Buffer }[] = [];
  private readonly perTopic = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly ackFrom: number,
  ) {}

  static async start(ackFrom = Infinity): Promise<MuteBroker> {
    const ref: { broker?: MuteBroker } = {};
    const server = createServer((s) => ref.broker?.serve(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    if (!addr || typeof addr === "string") throw new Error("no port");
    ref.broker = new MuteBroker(server, addr.port, ackFrom);
    return ref.broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  private serve(sock: Socket): void {
    const conn = ++this.connections;
    this.sockets.add(sock);
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) return;
        const len = readVarint(buf, 1);
        if (!len) return;
        const start = 1 + len[1];
        if (buf.length < start + len[0]) return;
        const type = buf[0]! >> 4;
        const flags = buf[0]! & 0x0f;
        const body = buf.subarray(start, start + len[0]);
        buf = buf.subarray(start + len[0]);
        this.packet(sock, conn, type, flags, body);
      }
    });
  }

  private packet(sock: Socket, conn: number, type: number, flags: number, body: Buffer): void {
    switch (type) {
      case 1: // CONNECT → CONNACK: session present 0, reason 0, no properties
        sock.write(Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]));
        break;
      case 3: {
        // PUBLISH: topic, [packet id if QoS > 0], properties, payload
        const qos = (flags >> 1) & 0x03;
        const tlen = body.readUInt16BE(0);
        const topic = body.subarray(2, 2 + tlen).toString();
        let at = 2 + tlen;
        const pid = qos > 0 ? body.readUInt16BE(at) : 0;
        if (qos > 0) at += 2;
        const props = readVarint(body, at)!;
        at += props[1] + props[0];
        const p = { connection: conn, topic, payload: body.subarray(at) };
        this.published.push(p);
        const index = this.perTopic.get(`${conn}|${topic}`) ?? 0;
        this.perTopic.set(`${conn}|${topic}`, index + 1);
        if (qos === 1 && conn >= this.ackFrom) {
          const ack = Buffer.from([0x40, 0x02, pid >> 8, pid & 0xff]);
          if (this.hold?.(p, index)) this.held.push({ sock, ack });
          else sock.write(ack);
        }
        break;
      }
      case 8: {
        // SUBSCRIBE → SUBACK granting QoS 1 to every filter
        const pid = body.readUInt16BE(0);
        const props = readVarint(body, 2)!;
        let at = 2 + props[1] + props[0];
        let filters = 0;
        while (at < body.length) {
          at += 2 + body.readUInt16BE(at) + 1;
          filters++;
        }
        const rest = Buffer.concat([
          Buffer.from([pid >> 8, pid & 0xff, 0x00]),
          Buffer.alloc(filters, 0x01),
        ]);
        sock.write(Buffer.concat([Buffer.from([0x90]), varint(rest.length), rest]));
        break;
      }
      case 12: // PINGREQ → PINGRESP
        this.pingreqs++;
        sock.write(Buffer.from([0xd0, 0x00]));
        break;
      case 14: // DISCONNECT
        sock.end();
        break;
      default:
        break;
    }
  }

  /** Send the withheld PUBACKs (on their connection, if it is still open). */
  release(): void {
    for (const h of this.held.splice(0)) if (!h.sock.destroyed) h.sock.write(h.ack);
  }

  /** Close every client connection (the broker keeps listening). */
  dropClients(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
