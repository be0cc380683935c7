/**
 * LoRaWAN 1.0.x MAC commands (§5, Table 4): parsing what a device sends (in FOpts or in an FPort 0
 * payload) and the answers this network server gives. Only LinkCheckReq and DeviceTimeReq ask
 * for an answer; the others answer requests this server never sends and are only reported.
 */

export interface MacCommand {
  cid: number;
  name: string;
  payload: Buffer;
}

/** Device → network commands: name and payload length. */
const UPLINK: Record<number, [string, number]> = {
  0x01: ["ResetInd", 1],
  0x02: ["LinkCheckReq", 0],
  0x03: ["LinkADRAns", 1],
  0x04: ["DutyCycleAns", 0],
  0x05: ["RXParamSetupAns", 1],
  0x06: ["DevStatusAns", 2],
  0x07: ["NewChannelAns", 1],
  0x08: ["RXTimingSetupAns", 0],
  0x09: ["TxParamSetupAns", 0],
  0x0a: ["DlChannelAns", 1],
  0x0b: ["RekeyInd", 1],
  0x0c: ["ADRParamSetupAns", 0],
  0x0d: ["DeviceTimeReq", 0],
  0x0f: ["RejoinParamSetupAns", 1],
  0x10: ["PingSlotInfoReq", 1],
  0x11: ["PingSlotChannelAns", 1],
  0x13: ["BeaconFreqAns", 1],
};

/** Network → device commands (for the simulated device). */
const DOWNLINK: Record<number, [string, number]> = {
  0x02: ["LinkCheckAns", 2],
  0x03: ["LinkADRReq", 4],
  0x04: ["DutyCycleReq", 1],
  0x05: ["RXParamSetupReq", 4],
  0x06: ["DevStatusReq", 0],
  0x07: ["NewChannelReq", 5],
  0x08: ["RXTimingSetupReq", 1],
  0x09: ["TxParamSetupReq", 1],
  0x0a: ["DlChannelReq", 4],
  0x0d: ["DeviceTimeAns", 5],
};

export interface ParsedMac {
  commands: MacCommand[];
  /** Set when parsing stopped at an unknown CID or a truncated command (the rest is unreadable). */
  error?: string;
}

function parseWith(table: Record<number, [string, number]>, buf: Buffer): ParsedMac {
  const commands: MacCommand[] = [];
  let i = 0;
  while (i < buf.length) {
    const cid = buf[i]!;
    const def = table[cid];
    if (!def)
      return {
        commands,
        error: `unknown MAC command 0x${cid.toString(16).padStart(2, "0")} at byte ${i}`,
      };
    const [name, len] = def;
    if (i + 1 + len > buf.length) return { commands, error: `${name} truncated at byte ${i}` };
    commands.push({ cid, name, payload: buf.subarray(i + 1, i + 1 + len) });
    i += 1 + len;
  }
  return { commands };
}

export const parseUplinkMac = (buf: Buffer): ParsedMac => parseWith(UPLINK, buf);
export const parseDownlinkMac = (buf: Buffer): ParsedMac => parseWith(DOWNLINK, buf);

/** Demodulation floor per spreading factor (SX1276 datasheet, used by ChirpStack for margins). */
const REQUIRED_SNR: Record<number, number> = {
  7: -7.5,
  8: -10,
  9: -12.5,
  10: -15,
  11: -17.5,
  12: -20,
};

/** Seconds between the Unix and GPS epochs (1980-01-06) and the current GPS−UTC leap seconds. */
const GPS_EPOCH_MS = Date.UTC(1980, 0, 6);
const GPS_LEAP_SECONDS = 18;

/** GPS time (ms) of a UTC instant. */
export function gpsTimeMs(utcMs: number): number {
  return utcMs - GPS_EPOCH_MS + GPS_LEAP_SECONDS * 1000;
}

export interface UplinkRadio {
  sf?: number;
  snr: number;
  gateways: number;
  /** GPS time (ms) at the end of the uplink if the concentrator has it (`tmms`), else undefined. */
  gpsMs?: number;
  /** Local reception time (ms since the Unix epoch). */
  receivedAt: number;
}

/** Answers (concatenated) to the requests among `commands`. */
export function answerMac(commands: readonly MacCommand[], radio: UplinkRadio): Buffer {
  return Buffer.concat(answerMacCommands(commands, radio));
}

/**
 * FOpts carry at most 15 bytes (§4.3.1.6) and a MAC command is never split across frames: pick
 * the longest prefix of whole commands that fits `max` bytes.
 */
export function wholeCommands(cmds: readonly Buffer[], max: number): number {
  let n = 0;
  let len = 0;
  while (n < cmds.length && len + cmds[n]!.length <= max) len += cmds[n++]!.length;
  return n;
}

/** Answers to the requests among `commands`, one buffer per MAC command. */
export function answerMacCommands(commands: readonly MacCommand[], radio: UplinkRadio): Buffer[] {
  const out: Buffer[] = [];
  for (const c of commands) {
    if (c.name === "LinkCheckReq") {
      // §5.2: margin in dB above the demodulation floor (0..254), and the gateway count.
      const floor = REQUIRED_SNR[radio.sf ?? 7] ?? -7.5;
      const margin = Math.max(0, Math.min(254, Math.round(radio.snr - floor)));
      out.push(Buffer.from([0x02, margin, Math.min(255, radio.gateways)]));
    } else if (c.name === "DeviceTimeReq") {
      // §5.9: GPS seconds (u32 LE) + fractional second in 1/256 s.
      const gps = radio.gpsMs ?? gpsTimeMs(radio.receivedAt);
      const b = Buffer.alloc(6);
      b[0] = 0x0d;
      b.writeUInt32LE(Math.floor(gps / 1000) >>> 0, 1);
      b[5] = Math.floor(((gps % 1000) * 256) / 1000);
      out.push(b);
    }
  }
  return out;
}
