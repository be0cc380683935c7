/**
 * Built-in simulated meters with values that grow with time: a heat meter answering in two
 * telegrams (current values, then monthly stored values) and a water meter.
 */
import { bcd8Record, dateTimeRecord, header, int16Record, int32Record, tail } from "./telegram.js";
import type { SimMeter } from "./slave.js";
import { simManufacturer } from "./wire.js";

export function heatMeter(address: number, id: string, start = Date.now()): SimMeter {
  let access = 0;
  return {
    address,
    id,
    manufacturer: simManufacturer("ECL"),
    version: 1,
    medium: 0x04,
    telegrams: () => {
      const t = (Date.now() - start) / 1000;
      const now = new Date();
      const h = header({
        id,
        manufacturer: "ECL",
        version: 1,
        medium: 0x04,
        accessNumber: access++,
      });
      const first = Buffer.concat([
        h,
        bcd8Record(0x06, 1234 + Math.floor(t / 60)), // energy, kWh (VIF 06h)
        int32Record(0x13, 56789 + Math.floor(t * 2)), // volume, litres (VIF 13h)
        int16Record(0x2b, 4200 + Math.round(300 * Math.sin(t / 60))), // power, W
        int16Record(0x5a, 652), // flow temperature, 0.1 °C
        int16Record(0x5e, 413), // return temperature, 0.1 °C
        int16Record(0x62, 239), // temperature difference, 0.1 K
        dateTimeRecord(now),
        tail(true),
      ]);
      const second = Buffer.concat([
        header({ id, manufacturer: "ECL", version: 1, medium: 0x04, accessNumber: access++ }),
        bcd8Record(0x06, 1100, { storage: 1 }),
        int32Record(0x13, 51000, { storage: 1 }),
        bcd8Record(0x06, 800, { storage: 1, tariff: 1 }),
        tail(false, Buffer.from([0x01, 0x02])),
      ]);
      return [first, second];
    },
  };
}

export function waterMeter(address: number, id: string, start = Date.now()): SimMeter {
  let access = 0;
  return {
    address,
    id,
    manufacturer: simManufacturer("ECL"),
    version: 2,
    medium: 0x07,
    telegrams: () => {
      const t = (Date.now() - start) / 1000;
      return [
        Buffer.concat([
          header({ id, manufacturer: "ECL", version: 2, medium: 0x07, accessNumber: access++ }),
          int32Record(0x13, 123456 + Math.floor(t)), // volume, litres
          int32Record(0x3b, 300 + Math.round(50 * Math.sin(t / 30))), // flow, l/h
          dateTimeRecord(new Date()),
        ]),
      ];
    },
  };
}
