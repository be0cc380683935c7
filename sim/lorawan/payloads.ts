/**
 * Plausible payloads for the shipped codecs, in the vendors' formats (see
 * drivers/lorawan/codecs/*.js), so a demo shows moving values end to end.
 */
export type SimKind = "co2" | "people" | "water";

export const CODEC_OF: Record<SimKind, string> = {
  co2: "milesight-am103",
  people: "milesight-vs350",
  water: "milesight-em300-di",
};

export const POINTS_OF: Record<SimKind, { id: string; unit: string; field?: string }[]> = {
  co2: [
    { id: "co2", unit: "ppm" },
    { id: "temperature", unit: "Cel" },
    { id: "humidity", unit: "%RH" },
    { id: "battery", unit: "%" },
  ],
  people: [
    { id: "total_in", unit: "count" },
    { id: "total_out", unit: "count" },
    { id: "period_in", unit: "count" },
    { id: "period_out", unit: "count" },
    { id: "battery", unit: "%" },
  ],
  water: [
    { id: "volume", unit: "m3", field: "water" },
    { id: "pulses", unit: "count", field: "pulse" },
    { id: "battery", unit: "%" },
  ],
};

const u16 = (v: number) => [v & 0xff, (v >> 8) & 0xff];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** The n-th uplink payload of a device of this kind (FPort 85, Milesight channel format). */
export function payloadFor(kind: SimKind, n: number, device: number): Buffer {
  switch (kind) {
    case "co2": {
      const co2 = 420 + ((n * 37 + device * 11) % 900);
      const t = 190 + ((n + device) % 40); // 19.0..22.9 °C
      return Buffer.from([
        0x01,
        0x75,
        95 - (n % 5),
        0x03,
        0x67,
        ...u16(t),
        0x04,
        0x68,
        90 + (n % 20),
        0x07,
        0x7d,
        ...u16(co2),
      ]);
    }
    case "people": {
      const pin = 3 + ((n + device) % 7);
      const pout = 2 + ((n * 3 + device) % 6);
      const tin = 100 * device + n * 5;
      return Buffer.from([
        0x04,
        0xcc,
        ...u16(tin),
        ...u16(tin - n),
        0x05,
        0xcc,
        ...u16(pin),
        ...u16(pout),
        0x01,
        0x75,
        88,
      ]);
    }
    case "water": {
      const pulses = 10_000 * (device + 1) + n * 13;
      const volume = Buffer.alloc(4);
      volume.writeFloatLE(pulses / 1000, 0); // 1 l per pulse → m3
      return Buffer.from([
        0x01,
        0x75,
        97,
        0x05,
        0xc8,
        ...u32(pulses),
        0x05,
        0xe1,
        ...u16(10),
        ...u16(10000),
        ...volume,
      ]);
    }
  }
}
