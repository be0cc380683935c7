/**
 * Building blocks shared by the core schema and every driver's block. Every option carries its
 * description, unit and default here, once (the JSON Schema for editors is generated from it).
 */
import { z } from "zod";

/** An id that is safe as one MQTT topic segment and as a file/SQL key: no `/`, `+`, `#`, spaces. */
export const topicSegment = z
  .string({ error: "expected a string of letters, digits, '_', '.', '-'" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
    error:
      "expected 1-64 characters from A-Z a-z 0-9 _ . - starting with a letter or digit (it becomes an MQTT topic segment: no '/', '+', '#' or spaces)",
  });

export function intRange(min: number, max: number) {
  return z
    .number({ error: `expected integer ${min}..${max}` })
    .int({ error: `expected integer ${min}..${max}` })
    .min(min, { error: `expected integer ${min}..${max}` })
    .max(max, { error: `expected integer ${min}..${max}` });
}

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A duration with an explicit unit: "200ms", "10s", "15m", "2h", "7d". A bare number is refused:
 * milliseconds or seconds would be a guess, and a wrong guess on a street cabinet is silent.
 * Parsed to milliseconds.
 */
export const duration = z
  .string({ error: 'expected a duration with a unit, e.g. "500ms", "10s", "15m", "1h", "7d"' })
  .regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, {
    error: 'expected a duration with a unit, e.g. "500ms", "10s", "15m", "1h", "7d"',
  })
  .transform((s) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s);
    // The regex above guarantees the match.
    return Math.round(Number(m![1]) * durationUnits[m![2]!]!);
  });

/** Milliseconds → the compact string form accepted by `duration` (for defaults and docs). */
export function formatDuration(ms: number): string {
  for (const [u, f] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ] as const) {
    if (ms % f === 0 && ms >= f) return `${ms / f}${u}`;
  }
  return `${ms}ms`;
}

/**
 * SenML unit symbols: RFC 8428 §12.1 plus the secondary units of RFC 8798 that meters use.
 * Validation keeps "kwh" or "°C" from reaching the hypervisor.
 */
export const senmlUnits = [
  "m",
  "kg",
  "g",
  "s",
  "A",
  "K",
  "cd",
  "mol",
  "Hz",
  "rad",
  "sr",
  "N",
  "Pa",
  "J",
  "W",
  "C",
  "V",
  "F",
  "Ohm",
  "S",
  "Wb",
  "T",
  "H",
  "Cel",
  "lm",
  "lx",
  "Bq",
  "Gy",
  "Sv",
  "kat",
  "m2",
  "m3",
  "l",
  "m/s",
  "m/s2",
  "m3/s",
  "l/s",
  "W/m2",
  "cd/m2",
  "bit",
  "bit/s",
  "lat",
  "lon",
  "pH",
  "dB",
  "dBW",
  "Bspl",
  "count",
  "/",
  "%",
  "%RH",
  "%EL",
  "EL",
  "1/s",
  "1/min",
  "beat/min",
  "beats",
  "S/m",
  "B",
  "VA",
  "VAs",
  "var",
  "vars",
  "J/m",
  "kg/m3",
  "deg",
  // RFC 8798 secondary units
  "ms",
  "min",
  "h",
  "MHz",
  "kW",
  "kVA",
  "kvar",
  "Ah",
  "Wh",
  "kWh",
  "varh",
  "kvarh",
  "kVAh",
  "Wh/km",
  "KiB",
  "GB",
  "Mbit/s",
  "B/s",
  "MB/s",
  "mV",
  "mA",
  "dBm",
  "ug/m3",
  "mm/h",
  "m3/h",
  "ppm",
  "/100",
  "/1000",
  "hPa",
  "mm",
  "cm",
  "km",
  "km/h",
  "l/h",
  "VAh",
  "VArh",
] as const;

export const senmlUnit = z.enum(senmlUnits, {
  error:
    "expected a SenML unit symbol (RFC 8428 §12.1 / RFC 8798), e.g. W, Wh, kWh, V, A, Cel, %RH, m3, ppm, lx",
});

/** Absolute deadband as a number, or a percentage of the last sent value as "2%". */
export const deadband = z.union([
  z
    .number({ error: 'expected an absolute deadband (number >= 0) or a percentage like "2%"' })
    .min(0),
  z.string().regex(/^\d+(\.\d+)?%$/, {
    error: 'expected an absolute deadband (number >= 0) or a percentage like "2%"',
  }),
]);

export type Deadband = z.infer<typeof deadband>;

/**
 * Fields every point has, whatever its driver. Drivers extend this with their addressing fields.
 * `writable`/`min`/`max` are the allow-list the command router enforces.
 */
export const pointBase = {
  id: topicSegment.describe(
    "Point id, unique within its device; the SenML name is <device>/<point>.",
  ),
  description: z.string().optional().describe("Free text for technicians and the inventory."),
  unit: senmlUnit.optional().describe("SenML unit symbol of the scaled value."),
  deadband: deadband
    .optional()
    .describe(
      'Report by exception: send only when the value moved by this much (number) or this share ("2%") since the last sent value.',
    ),
  max_interval: duration
    .optional()
    .describe('Send the value at least this often even when it did not change (e.g. "15m").'),
  writable: z
    .boolean()
    .default(false)
    .describe(
      "Allow writes through the command router. Default false: nothing is writable unless declared.",
    ),
  min: z.number().optional().describe("Lowest value a write may set (and a plausible reading)."),
  max: z.number().optional().describe("Highest value a write may set."),
};

/** Fields every device has, whatever its driver. */
export const deviceBase = {
  id: topicSegment.describe("Device id, unique in the gateway; first part of every SenML name."),
  name: z.string().optional().describe("Human name shown to technicians and in the inventory."),
  enabled: z
    .boolean()
    .default(true)
    .describe("A disabled device is kept in the config but not polled."),
};

/** Fields every driver instance has. */
export const driverBase = {
  id: topicSegment.describe("Driver instance id (a bus or listener), unique in the gateway."),
  enabled: z.boolean().default(true),
};

const LAT = "expected latitude in degrees -90..90";
const LON = "expected longitude in degrees -180..180";

/** WGS84 position (the main config's gateway block and the provisioning bundle share it). */
export const location = z.strictObject({
  lat: z.number({ error: LAT }).min(-90, { error: LAT }).max(90, { error: LAT }),
  lon: z.number({ error: LON }).min(-180, { error: LON }).max(180, { error: LON }),
});
