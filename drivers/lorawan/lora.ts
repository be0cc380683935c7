/**
 * LoRaWAN 1.0.x frame security on top of lora-packet: 32-bit frame counter reconstruction, MIC
 * verification, FRMPayload decryption, downlink and Join Accept construction, session keys.
 *
 * Pitfalls of lora-packet 0.9 (see testcases/lorawan.json "pitfalls"):
 *  - DevAddr/FCnt/EUIs are exposed big-endian, but the `FCntMSBytes` argument (upper 16 bits of
 *    the 32-bit counter) must be given little-endian, as it is copied verbatim into the B0/Ai
 *    blocks (LoRaWAN 1.0.4 §4.4, §4.3.3.1).
 *  - A Join Accept is encrypted with AES *decrypt* (§6.2.5); `fromWire` on the encrypted frame
 *    shows garbage until `decryptJoinAccept` has been applied.
 */
import { createCipheriv } from "node:crypto";
import loraPacketModule from "lora-packet";

type LoraLib = typeof loraPacketModule.default;
// lora-packet is CommonJS with `module.exports = modules` (no `.default` at runtime), while its
// typings declare `export default`: under NodeNext the default import is typed as the
// `module.exports` object with a `.default`. Accept both shapes (verified with node at runtime).
const mod = loraPacketModule as unknown as LoraLib & { default?: LoraLib };
export const lora: LoraLib = mod.default ?? mod;
export type LoraPacket = ReturnType<LoraLib["fromWire"]>;

/** MType values (LoRaWAN 1.0.4 §4.2.1). */
export const MType = {
  JoinRequest: 0,
  JoinAccept: 1,
  UnconfirmedUp: 2,
  UnconfirmedDown: 3,
  ConfirmedUp: 4,
  ConfirmedDown: 5,
  RejoinRequest: 6,
  Proprietary: 7,
} as const;

export function mtypeOf(phy: Buffer): number {
  return (phy[0] ?? 0) >> 5;
}

/**
 * The full 32-bit uplink counter from its 16 transmitted bits and the next expected value
 * (ChirpStack `get_full_f_cnt_up`, storage/device.rs; test cases in the shared vectors). A frame
 * whose 16 bits equal next-1 is a retransmission of the last frame.
 */
export function fullFCnt(nextExpected: number, truncated: number): number {
  const next = nextExpected >>> 0;
  const low = next & 0xffff;
  if (truncated === ((low - 1) & 0xffff) && low !== 0) return (next - 1) >>> 0;
  if (low === 0 && truncated === 0xffff && next > 0) return (next - 1) >>> 0;
  const gap = truncated >= low ? truncated - low : 0x10000 - low + truncated;
  return (next + gap) >>> 0;
}

/**
 * The most recent counter below `nextExpected` with these 16 low bits, or -1: what an authentic
 * old frame (a replay) would have been sent with.
 */
export function olderFCnt(nextExpected: number, truncated: number): number {
  let c = (nextExpected & 0xffff0000) + truncated;
  if (c >= nextExpected) c -= 0x10000;
  return c;
}

/** Upper 16 bits of a 32-bit counter, little-endian, as lora-packet wants them. */
export function fCntMsb(fCnt32: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE((fCnt32 >>> 16) & 0xffff, 0);
  return b;
}

export function parse(phy: Buffer): LoraPacket {
  return lora.fromWire(phy);
}

export function verifyDataMic(p: LoraPacket, nwkSKey: Buffer, fCnt32: number): boolean {
  return lora.verifyMIC(p, nwkSKey, undefined, fCntMsb(fCnt32));
}

/**
 * FRMPayload in clear: AppSKey for FPort > 0, NwkSKey for FPort 0 (MAC commands), §4.3.3.1.
 *
 * Same computation as lora-packet's `decrypt` (tested against it and the vectors), but with
 * node:crypto's AES: lora-packet runs AES in pure JavaScript (crypto-js), which made decryption
 * the largest cost of an uplink in bench/lorawan-uplink.ts.
 */
export function decryptPayload(
  p: LoraPacket,
  appSKey: Buffer,
  nwkSKey: Buffer,
  fCnt32: number,
): Buffer {
  const data = p.FRMPayload;
  if (!data || data.length === 0) return Buffer.alloc(0);
  const key = p.getFPort() === 0 ? nwkSKey : appSKey;
  return cryptFrmPayload(key, data, p.DevAddr!, fCnt32, p.getDir() === "down");
}

/** XOR `data` with the keystream S = aes128(K, A1) | aes128(K, A2) | … (§4.3.3.1). */
export function cryptFrmPayload(
  key: Buffer,
  data: Buffer,
  devAddrBE: Buffer,
  fCnt32: number,
  down: boolean,
): Buffer {
  const blocks = Math.ceil(data.length / 16);
  const a = Buffer.alloc(16 * blocks);
  for (let i = 0; i < blocks; i++) {
    const o = i * 16;
    a[o] = 0x01;
    a[o + 5] = down ? 1 : 0;
    for (let j = 0; j < 4; j++) a[o + 6 + j] = devAddrBE[3 - j]!;
    a.writeUInt32LE(fCnt32 >>> 0, o + 10);
    a[o + 15] = i + 1;
  }
  const c = createCipheriv("aes-128-ecb", key, null);
  c.setAutoPadding(false);
  const s = c.update(a);
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ s[i]!;
  return out;
}

/** Fields of a data frame, as the device side (simulator) gives them for an uplink. */
export interface DataUpFields {
  devAddr: Buffer; // big-endian
  fCnt32: number;
  confirmed: boolean;
  ack?: boolean;
  adr?: boolean;
  fOpts?: Buffer; // MAC commands (clear in 1.0.x), at most 15 bytes
  fPort?: number;
  payload?: Buffer;
}

/** A downlink says whether it ACKs the uplink and whether more is queued (FPending). */
export interface DataDownFields extends DataUpFields {
  ack: boolean;
  fPending: boolean;
}

/** Network side: a downlink data frame. */
export function buildDataDown(f: DataDownFields, appSKey: Buffer, nwkSKey: Buffer): Buffer {
  return buildData(f.confirmed ? MType.ConfirmedDown : MType.UnconfirmedDown, f, appSKey, nwkSKey);
}

/** Device side (simulator): an uplink data frame. */
export function buildDataUp(f: DataUpFields, appSKey: Buffer, nwkSKey: Buffer): Buffer {
  return buildData(f.confirmed ? MType.ConfirmedUp : MType.UnconfirmedUp, f, appSKey, nwkSKey);
}

/**
 * A data frame in either direction; the direction is in `mtype` (the MHDR). `fPending` is a
 * downlink flag only: the same FCtrl bit is ClassB in an uplink, which the simulator never sets.
 */
type DataFields = DataUpFields & { fPending?: boolean };

function buildData(mtype: number, f: DataFields, appSKey: Buffer, nwkSKey: Buffer): Buffer {
  if (f.fPort === undefined) return portless(mtype, f, nwkSKey);
  const p = lora.fromFields(
    {
      MType: mtype,
      DevAddr: f.devAddr,
      FCtrl: { ACK: f.ack ?? false, FPending: f.fPending ?? false, ADR: f.adr ?? false },
      FCnt: f.fCnt32 & 0xffff,
      ...(f.fOpts && f.fOpts.length > 0 ? { FOpts: f.fOpts } : {}),
      FPort: f.fPort,
      payload: f.payload ?? Buffer.alloc(0),
    },
    appSKey,
    nwkSKey,
    undefined,
    fCntMsb(f.fCnt32),
  );
  return p.getPHYPayload() as Buffer;
}

/**
 * A data frame without FPort (only an ACK and/or FOpts MAC commands). lora-packet's `fromFields`
 * computes the MIC only after encrypting a payload, so build the bytes here (§4.3) and let
 * lora-packet compute the MIC of the parsed frame.
 */
function portless(mtype: number, f: DataFields, nwkSKey: Buffer): Buffer {
  const fOpts = f.fOpts ?? Buffer.alloc(0);
  if (fOpts.length > 15) throw new RangeError("FOpts longer than 15 bytes");
  const fctrl = (f.adr ? 0x80 : 0) | (f.ack ? 0x20 : 0) | (f.fPending ? 0x10 : 0) | fOpts.length;
  const head = Buffer.alloc(8);
  head[0] = mtype << 5;
  Buffer.from(f.devAddr).reverse().copy(head, 1);
  head[5] = fctrl;
  head.writeUInt16LE(f.fCnt32 & 0xffff, 6);
  const p = lora.fromWire(Buffer.concat([head, fOpts, Buffer.alloc(4)]));
  lora.recalculateMIC(p, nwkSKey, undefined, fCntMsb(f.fCnt32));
  return p.getPHYPayload() as Buffer;
}

export function verifyJoinRequestMic(p: LoraPacket, appKey: Buffer): boolean {
  return lora.verifyMIC(p, undefined, appKey);
}

/** Device side: a Join Request (EUIs and DevNonce big-endian, as lora-packet shows them). */
export function buildJoinRequest(
  joinEui: Buffer,
  devEui: Buffer,
  devNonce: number,
  appKey: Buffer,
): Buffer {
  const nonce = Buffer.alloc(2);
  nonce.writeUInt16BE(devNonce, 0);
  const p = lora.fromFields(
    { MType: "Join Request", AppEUI: joinEui, DevEUI: devEui, DevNonce: nonce },
    undefined,
    undefined,
    appKey,
  );
  return p.getPHYPayload() as Buffer;
}

export interface JoinAcceptFields {
  joinNonce: number; // 24 bits
  netId: Buffer; // 3 bytes, big-endian
  devAddr: Buffer; // big-endian
  rx1DrOffset: number;
  rx2Dr: number;
  rxDelay: number; // seconds, 1..15 (0 means 1)
  /** 16 bytes (cfListEu868) or absent. */
  cfList?: Buffer;
}

/**
 * EU868 CFList (RP002-1.0.4 §2.4.4): up to five extra channel frequencies, each 24 bits
 * little-endian in units of 100 Hz, zero-padded to 15 bytes, then CFListType 0 (frequencies).
 */
export function cfListEu868(freqsMHz: readonly number[]): Buffer {
  if (freqsMHz.length > 5) throw new RangeError("a CFList holds at most 5 frequencies");
  const b = Buffer.alloc(16);
  freqsMHz.forEach((f, i) => b.writeUIntLE(Math.round(f * 10_000), i * 3, 3));
  return b;
}

/** Network side: the encrypted Join Accept, ready for the air (§6.2.5). */
export function buildJoinAccept(f: JoinAcceptFields, appKey: Buffer): Buffer {
  const nonce = Buffer.alloc(3);
  nonce.writeUIntBE(f.joinNonce & 0xffffff, 0, 3);
  const p = lora.fromFields(
    {
      MType: "Join Accept",
      AppNonce: nonce,
      NetID: f.netId,
      DevAddr: f.devAddr,
      // DLSettings/RxDelay of 0 are falsy and would be dropped by lora-packet: pass buffers.
      DLSettings: Buffer.from([((f.rx1DrOffset & 0x7) << 4) | (f.rx2Dr & 0x0f)]),
      RxDelay: Buffer.from([f.rxDelay & 0x0f]),
      CFList: f.cfList ?? Buffer.alloc(0),
    },
    undefined,
    undefined,
    appKey,
  );
  return p.getPHYPayload() as Buffer;
}

export interface JoinAcceptClear {
  joinNonce: Buffer; // big-endian
  netId: Buffer;
  devAddr: Buffer;
  dlSettings: number;
  rxDelay: number;
  cfList: Buffer;
  micOk: boolean;
}

/** Device side: decrypt (AES encrypt, §6.2.5) and check a Join Accept. */
export function openJoinAccept(phy: Buffer, appKey: Buffer): JoinAcceptClear {
  const clear = lora.decryptJoinAccept(lora.fromWire(phy), appKey);
  const p = lora.fromWire(clear);
  if (!p.AppNonce || !p.NetID || !p.DevAddr || !p.DLSettings || !p.RxDelay)
    throw new Error("not a Join Accept");
  return {
    joinNonce: p.AppNonce,
    netId: p.NetID,
    devAddr: p.DevAddr,
    dlSettings: p.DLSettings[0] ?? 0,
    rxDelay: p.RxDelay[0] ?? 0,
    cfList: p.CFList ?? Buffer.alloc(0),
    micOk: lora.verifyMIC(p, undefined, appKey),
  };
}

/** LoRaWAN 1.0.x session keys; the three inputs big-endian (§6.2.5). */
export function sessionKeys(
  appKey: Buffer,
  netId: Buffer,
  joinNonce: Buffer,
  devNonce: Buffer,
): { nwkSKey: Buffer; appSKey: Buffer } {
  const k = lora.generateSessionKeys10(appKey, netId, joinNonce, devNonce);
  return { nwkSKey: k.NwkSKey, appSKey: k.AppSKey };
}
