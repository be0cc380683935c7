/**
 * The Semtech UDP packet-forwarder protocol, versions 1 and 2 (lora_gateway/packet_forwarder
 * PROTOCOL.TXT, §3–§6): datagram parsing and building, no I/O. Each datagram is
 * `version | token (2 bytes) | identifier | …`.
 */

export const PktType = {
  PushData: 0x00,
  PushAck: 0x01,
  PullData: 0x02,
  PullResp: 0x03,
  PullAck: 0x04,
  TxAck: 0x05,
} as const;

/** One received packet as the concentrator reports it (PROTOCOL.TXT §4, `rxpk`). */
export interface RxPk {
  tmst: number; // concentrator internal counter, µs (wraps at 2^32)
  time?: string;
  tmms?: number; // GPS time, ms
  freq: number; // MHz
  chan?: number;
  rfch?: number;
  stat: number; // 1 CRC ok, -1 CRC bad, 0 no CRC
  modu: string; // LORA | FSK
  datr: string; // SF7BW125 …
  codr?: string;
  rssi: number;
  lsnr: number;
  size: number;
  data: Buffer;
}

/** Gateway status (`stat`, PROTOCOL.TXT §4). */
export interface GatewayStat {
  time?: string;
  lati?: number;
  long?: number;
  alti?: number;
  rxnb?: number;
  rxok?: number;
  rxfw?: number;
  ackr?: number;
  dwnb?: number;
  txnb?: number;
  temp?: number;
}

/** A downlink for the concentrator (`txpk`, PROTOCOL.TXT §6). */
export interface TxPk {
  imme?: boolean;
  tmst?: number;
  freq: number;
  rfch: number;
  powe: number;
  modu: "LORA";
  datr: string;
  codr: string;
  ipol: boolean;
  size: number;
  data: string; // base64
}

export type Datagram =
  | {
      type: "push_data";
      version: number;
      token: number;
      gatewayEui: string;
      rxpk: RxPk[];
      stat?: GatewayStat;
      badRxpk: number;
    }
  | { type: "pull_data"; version: number; token: number; gatewayEui: string }
  | { type: "tx_ack"; version: number; token: number; gatewayEui: string; error: string }
  | { type: "push_ack" | "pull_ack"; version: number; token: number }
  | { type: "pull_resp"; version: number; token: number; txpk: TxPk };

/** Why a datagram was refused; each reason has its own counter. */
export type MalformedReason = "short" | "version" | "identifier" | "json" | "base64" | "field";

export class MalformedDatagram extends Error {
  constructor(
    readonly reason: MalformedReason,
    message: string,
  ) {
    super(message);
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeB64(s: unknown, what: string): Buffer {
  if (typeof s !== "string" || s.length % 4 === 1 || !BASE64.test(s))
    throw new MalformedDatagram("base64", `${what} is not base64`);
  return Buffer.from(s, "base64");
}

function parseJson(buf: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString("utf8"));
  } catch {
    throw new MalformedDatagram("json", "payload is not JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new MalformedDatagram("json", "payload is not a JSON object");
  return v as Record<string, unknown>;
}

const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function parseRxpk(o: unknown): RxPk {
  if (o === null || typeof o !== "object")
    throw new MalformedDatagram("field", "rxpk entry is not an object");
  const r = o as Record<string, unknown>;
  if (!num(r.tmst) || !num(r.freq) || typeof r.datr !== "string" || !num(r.rssi))
    throw new MalformedDatagram("field", "rxpk lacks tmst, freq, datr or rssi");
  const data = decodeB64(r.data, "rxpk.data");
  if (num(r.size) && r.size !== data.length)
    throw new MalformedDatagram(
      "base64",
      `rxpk.size ${r.size} does not match ${data.length} decoded bytes`,
    );
  return {
    tmst: r.tmst >>> 0,
    ...(typeof r.time === "string" ? { time: r.time } : {}),
    ...(num(r.tmms) ? { tmms: r.tmms } : {}),
    freq: r.freq,
    ...(num(r.chan) ? { chan: r.chan } : {}),
    ...(num(r.rfch) ? { rfch: r.rfch } : {}),
    stat: num(r.stat) ? r.stat : 1,
    modu: typeof r.modu === "string" ? r.modu : "LORA",
    datr: r.datr,
    ...(typeof r.codr === "string" ? { codr: r.codr } : {}),
    rssi: r.rssi,
    lsnr: num(r.lsnr) ? r.lsnr : 0,
    size: data.length,
    data,
  };
}

function eui(buf: Buffer, at: number): string {
  return buf.subarray(at, at + 8).toString("hex");
}

/** Parse one datagram; throws MalformedDatagram. A bad rxpk entry does not spoil its siblings. */
/**
 * The gateway EUI of an upstream datagram (PUSH_DATA, PULL_DATA, TX_ACK: bytes 4-11), read
 * without parsing its JSON, so that refused concentrators cost a header read (gateways.ts).
 */
export function peekGatewayEui(buf: Buffer): string | undefined {
  if (buf.length < 12 || (buf[0] !== 1 && buf[0] !== 2)) return undefined;
  const id = buf[3];
  return id === PktType.PushData || id === PktType.PullData || id === PktType.TxAck
    ? eui(buf, 4)
    : undefined;
}

export function parseDatagram(buf: Buffer): Datagram {
  if (buf.length < 4) throw new MalformedDatagram("short", `datagram of ${buf.length} bytes`);
  const version = buf[0]!;
  if (version !== 1 && version !== 2)
    throw new MalformedDatagram("version", `protocol version ${version} (expected 1 or 2)`);
  const token = buf.readUInt16BE(1);
  const id = buf[3]!;
  switch (id) {
    case PktType.PushData: {
      if (buf.length < 12) throw new MalformedDatagram("short", "PUSH_DATA without gateway EUI");
      const body = parseJson(buf.subarray(12));
      const rxpk: RxPk[] = [];
      let badRxpk = 0;
      let firstError: MalformedDatagram | undefined;
      if (body.rxpk !== undefined) {
        if (!Array.isArray(body.rxpk)) throw new MalformedDatagram("field", "rxpk is not an array");
        for (const r of body.rxpk) {
          try {
            rxpk.push(parseRxpk(r));
          } catch (e) {
            badRxpk++;
            firstError ??= e as MalformedDatagram;
          }
        }
      }
      // A datagram with nothing usable counts as malformed, with the reason of its first bad entry.
      if (firstError && rxpk.length === 0 && body.stat === undefined) throw firstError;
      const stat =
        body.stat !== null && typeof body.stat === "object"
          ? (body.stat as GatewayStat)
          : undefined;
      return {
        type: "push_data",
        version,
        token,
        gatewayEui: eui(buf, 4),
        rxpk,
        ...(stat ? { stat } : {}),
        badRxpk,
      };
    }
    case PktType.PullData:
      if (buf.length < 12) throw new MalformedDatagram("short", "PULL_DATA without gateway EUI");
      return { type: "pull_data", version, token, gatewayEui: eui(buf, 4) };
    case PktType.TxAck: {
      if (buf.length < 12) throw new MalformedDatagram("short", "TX_ACK without gateway EUI");
      let error = "NONE";
      // An empty or whitespace-only body means success (PROTOCOL.TXT §6).
      if (buf.subarray(12).toString("utf8").trim() !== "") {
        const body = parseJson(buf.subarray(12));
        const ack = body.txpk_ack as Record<string, unknown> | undefined;
        if (ack && typeof ack.error === "string") error = ack.error;
      }
      return { type: "tx_ack", version, token, gatewayEui: eui(buf, 4), error };
    }
    case PktType.PushAck:
      return { type: "push_ack", version, token };
    case PktType.PullAck:
      return { type: "pull_ack", version, token };
    case PktType.PullResp: {
      const body = parseJson(buf.subarray(4));
      if (!body.txpk || typeof body.txpk !== "object")
        throw new MalformedDatagram("field", "PULL_RESP without txpk");
      return { type: "pull_resp", version, token, txpk: body.txpk as TxPk };
    }
    default:
      throw new MalformedDatagram("identifier", `unknown identifier 0x${id.toString(16)}`);
  }
}

function header(version: number, token: number, id: number): Buffer {
  const b = Buffer.alloc(4);
  b[0] = version;
  b.writeUInt16BE(token & 0xffff, 1);
  b[3] = id;
  return b;
}

function withEui(h: Buffer, gatewayEui: string, json?: unknown): Buffer {
  return Buffer.concat([
    h,
    Buffer.from(gatewayEui, "hex"),
    ...(json === undefined ? [] : [Buffer.from(JSON.stringify(json))]),
  ]);
}

export const build = {
  pushAck: (version: number, token: number) => header(version, token, PktType.PushAck),
  pullAck: (version: number, token: number) => header(version, token, PktType.PullAck),
  pullResp: (version: number, token: number, txpk: TxPk) =>
    Buffer.concat([
      header(version, version === 1 ? 0 : token, PktType.PullResp),
      Buffer.from(JSON.stringify({ txpk })),
    ]),
  pushData: (
    version: number,
    token: number,
    gatewayEui: string,
    body: { rxpk?: unknown[]; stat?: GatewayStat },
  ) => withEui(header(version, token, PktType.PushData), gatewayEui, body),
  pullData: (version: number, token: number, gatewayEui: string) =>
    withEui(header(version, token, PktType.PullData), gatewayEui),
  txAck: (token: number, gatewayEui: string, error: string) =>
    withEui(
      header(2, token, PktType.TxAck),
      gatewayEui,
      error === "NONE" ? undefined : { txpk_ack: { error } },
    ),
};

/** "SF7BW125" → {sf: 7, bw: 125}; undefined for FSK or garbage. */
export function parseDatr(datr: string): { sf: number; bw: number } | undefined {
  const m = /^SF(\d{1,2})BW(\d{2,3})$/.exec(datr);
  return m ? { sf: Number(m[1]), bw: Number(m[2]) } : undefined;
}
