/** Configured devices resolved once: profile and device points merged, keys as buffers. */
import type { PointInfo, Reading, Value } from "../driver.js";
import type { LorawanDeviceConfig, LorawanDriverConfig, LorawanPointConfig } from "./schema.js";

export interface DeviceRuntime {
  cfg: LorawanDeviceConfig;
  id: string;
  devEui: string;
  codec: string;
  points: LorawanPointConfig[];
  appKey?: Buffer;
  joinEui?: string;
  lastUplinkAt?: number;
  lastFCnt?: number;
  errorCount: number;
  lastError?: string;
  lastErrorTs?: number;
  last: Map<string, Reading>;
  /** MAC answers that did not fit the last downlink (sent with the next one). */
  macBacklog: Buffer[];
}

export function resolveDevices(cfg: LorawanDriverConfig): DeviceRuntime[] {
  return cfg.devices
    .filter((d) => d.enabled)
    .map((d) => {
      const profile = d.profile !== undefined ? cfg.profiles[d.profile] : undefined;
      const byId = new Map<string, LorawanPointConfig>();
      for (const p of profile?.points ?? []) byId.set(p.id, p);
      for (const p of d.points) byId.set(p.id, p);
      // The schema guarantees a codec through the profile or the device.
      const codec = d.codec ?? profile!.codec;
      return {
        cfg: d,
        id: d.id,
        devEui: d.dev_eui,
        codec,
        points: [...byId.values()],
        ...(d.activation.type === "otaa"
          ? { appKey: Buffer.from(d.activation.app_key, "hex"), joinEui: d.activation.join_eui }
          : {}),
        errorCount: 0,
        last: new Map(),
        macBacklog: [],
      };
    });
}

/** Value at a dotted path of the codec's `data` ("meter.volume", "history.0.pulse"). */
export function pick(data: Record<string, unknown>, path: string): unknown {
  let v: unknown = data;
  for (const k of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

export function toValue(v: unknown, p: LorawanPointConfig): Value | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v * p.scale + p.offset : undefined;
  if (typeof v === "boolean" || typeof v === "string") return v;
  return undefined;
}

/** The command point of ABP devices that restarts their frame counters (see index.ts write). */
export const RESET_POINT: PointInfo = {
  id: "reset_frame_counters",
  type: "boolean",
  writable: true,
  description:
    "ABP only: write true after the device restarted its frame counters (its uplinks are refused as replays). Reopens the replay window for its old frames.",
};

export const LINK_POINTS: PointInfo[] = [
  {
    id: "rssi",
    unit: "dBm",
    type: "number",
    writable: false,
    description: "Signal strength of the best concentrator's copy of the last uplink.",
  },
  {
    id: "snr",
    unit: "dB",
    type: "number",
    writable: false,
    description: "Signal-to-noise ratio of the best copy of the last uplink.",
  },
];

export const GATEWAY_POINTS: { id: string; field: string; unit?: string; description: string }[] = [
  {
    id: "rx_received",
    field: "rxnb",
    unit: "count",
    description: "Radio packets received in the last interval (rxnb).",
  },
  {
    id: "rx_ok",
    field: "rxok",
    unit: "count",
    description: "Radio packets received with a valid CRC (rxok).",
  },
  {
    id: "rx_forwarded",
    field: "rxfw",
    unit: "count",
    description: "Radio packets forwarded (rxfw).",
  },
  {
    id: "ack_ratio",
    field: "ackr",
    unit: "%",
    description: "Share of upstream datagrams acknowledged (ackr).",
  },
  { id: "dl_received", field: "dwnb", unit: "count", description: "Downlinks received (dwnb)." },
  { id: "tx_sent", field: "txnb", unit: "count", description: "Packets emitted (txnb)." },
  {
    id: "temperature",
    field: "temp",
    unit: "Cel",
    description: "Concentrator temperature, when reported.",
  },
  { id: "latitude", field: "lati", unit: "lat", description: "GPS latitude." },
  { id: "longitude", field: "long", unit: "lon", description: "GPS longitude." },
  { id: "altitude", field: "alti", unit: "m", description: "GPS altitude." },
];

export const gatewayDeviceId = (eui: string): string => `gw-${eui}`;
