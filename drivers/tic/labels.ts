/**
 * TIC labels → points. Sources: Enedis-NOI-CPT_02E (historic mode, §6.2) and Enedis-NOI-CPT_54E
 * (standard mode, §6.2.3). Every known label has a strict data format: the 6-bit checksum cannot
 * see a flipped bit 6 (a change of ±64), so the format check is what catches "0" → "p".
 */
import type { TicGroup, TicMode } from "./frame.js";

export interface LabelDef {
  /** Point id (lower case; '+' becomes "p": NJOURF+1 → njourfp1). */
  point: string;
  unit?: string;
  type: "number" | "string";
  /** Data format; a group that does not match is dropped. */
  format: RegExp;
  description: string;
  /** Numeric value = data × scale. */
  scale?: number;
  /** The group carries a horodate (standard mode). */
  horodate?: boolean;
}

const D = (n: number | string) => new RegExp(`^\\d{${n}}$`);
const idx = (description: string, n = 9): Omit<LabelDef, "point"> => ({
  unit: "Wh",
  type: "number",
  format: D(n),
  description,
});
const amp = (description: string, n: number | string = 3): Omit<LabelDef, "point"> => ({
  unit: "A",
  type: "number",
  format: D(n),
  description,
});
const str = (format: RegExp, description: string): Omit<LabelDef, "point"> => ({
  type: "string",
  format,
  description,
});

const historic: Record<string, Omit<LabelDef, "point">> = {
  ADCO: str(/^\d{12}$/, "Meter address (identifies the device)"),
  // Enedis-NOI-CPT_02E §6.2.2: BASE, HC.., EJP., BBRx (x: the Tempo output programme).
  OPTARIF: str(/^(BASE|HC\.\.|EJP\.|BBR[\x21-\x7e])$/, "Tariff option"),
  ISOUSC: amp("Subscribed current", 2),
  BASE: idx("Index, base option"),
  HCHC: idx("Index, off-peak hours"),
  HCHP: idx("Index, peak hours"),
  EJPHN: idx("Index EJP, normal hours"),
  EJPHPM: idx("Index EJP, mobile peak hours"),
  BBRHCJB: idx("Index Tempo, off-peak blue days"),
  BBRHPJB: idx("Index Tempo, peak blue days"),
  BBRHCJW: idx("Index Tempo, off-peak white days"),
  BBRHPJW: idx("Index Tempo, peak white days"),
  BBRHCJR: idx("Index Tempo, off-peak red days"),
  BBRHPJR: idx("Index Tempo, peak red days"),
  PEJP: { unit: "min", type: "number", format: D(2), description: "EJP start notice" },
  // The eleven periods of §6.2.2: a checksum-valid "HPIS" (fuzzing) is not one of them.
  PTEC: str(
    /^(TH\.\.|HC\.\.|HP\.\.|HN\.\.|PM\.\.|HCJB|HCJW|HCJR|HPJB|HPJW|HPJR)$/,
    "Current tariff period",
  ),
  DEMAIN: str(/^(----|BLEU|BLAN|ROUG)$/, "Tomorrow's Tempo colour"),
  IINST: amp("Instantaneous current"),
  IINST1: amp("Instantaneous current, phase 1"),
  IINST2: amp("Instantaneous current, phase 2"),
  IINST3: amp("Instantaneous current, phase 3"),
  ADPS: amp("Subscribed power exceeded warning"),
  ADIR1: amp("Overcurrent warning, phase 1"),
  ADIR2: amp("Overcurrent warning, phase 2"),
  ADIR3: amp("Overcurrent warning, phase 3"),
  IMAX: amp("Maximum current"),
  IMAX1: amp("Maximum current, phase 1"),
  IMAX2: amp("Maximum current, phase 2"),
  IMAX3: amp("Maximum current, phase 3"),
  PMAX: {
    unit: "W",
    type: "number",
    format: D(5),
    description: "Maximum three-phase power reached",
  },
  PAPP: { unit: "VA", type: "number", format: D(5), description: "Apparent power" },
  HHPHC: str(/^[ACDEY]$/, "Peak/off-peak hours schedule"),
  MOTDETAT: str(/^[A-Z0-9]{6}$/, "Meter status word"),
  PPOT: str(/^[0-9A-F]{2}$/, "Presence of potentials"),
};

const va = (description: string): Omit<LabelDef, "point"> => ({
  unit: "VA",
  type: "number",
  format: D(5),
  description,
});
const vaH = (description: string): Omit<LabelDef, "point"> => ({
  ...va(description),
  horodate: true,
});
const wH = (description: string): Omit<LabelDef, "point"> => ({
  unit: "W",
  type: "number",
  format: D(5),
  description,
  horodate: true,
});
const volt = (description: string): Omit<LabelDef, "point"> => ({
  unit: "V",
  type: "number",
  format: D(3),
  description,
});
const text = (description: string): Omit<LabelDef, "point"> => ({
  type: "string",
  format: /^[\x20-\x7e]{0,32}$/,
  description,
});
const pm = (description: string): Omit<LabelDef, "point"> => ({
  type: "string",
  format: D(2),
  description,
  horodate: true,
});

const standard: Record<string, Omit<LabelDef, "point">> = {
  ADSC: str(/^\d{12}$/, "Secondary meter address (identifies the device)"),
  VTIC: str(/^\d{2}$/, "TIC version"),
  DATE: { type: "string", format: /^$/, description: "Meter date and time", horodate: true },
  NGTF: text("Supplier tariff name"),
  LTARF: text("Current tariff label"),
  EAST: idx("Total active energy withdrawn"),
  ...Object.fromEntries(
    Array.from({ length: 10 }, (_, k) => [
      `EASF${String(k + 1).padStart(2, "0")}`,
      idx(`Active energy withdrawn, supplier index ${k + 1}`),
    ]),
  ),
  ...Object.fromEntries(
    Array.from({ length: 4 }, (_, k) => [
      `EASD${String(k + 1).padStart(2, "0")}`,
      idx(`Active energy withdrawn, distributor index ${k + 1}`),
    ]),
  ),
  EAIT: idx("Total active energy injected"),
  ...Object.fromEntries(
    [1, 2, 3, 4].map((k) => [
      `ERQ${k}`,
      { unit: "varh", type: "number", format: D(9), description: `Reactive energy Q${k}` },
    ]),
  ),
  IRMS1: amp("RMS current, phase 1"),
  IRMS2: amp("RMS current, phase 2"),
  IRMS3: amp("RMS current, phase 3"),
  URMS1: volt("RMS voltage, phase 1"),
  URMS2: volt("RMS voltage, phase 2"),
  URMS3: volt("RMS voltage, phase 3"),
  PREF: { unit: "kVA", type: "number", format: D(2), description: "Reference apparent power" },
  PCOUP: { unit: "kVA", type: "number", format: D(2), description: "Cut-off apparent power" },
  SINSTS: va("Instantaneous apparent power withdrawn"),
  SINSTS1: va("Instantaneous apparent power withdrawn, phase 1"),
  SINSTS2: va("Instantaneous apparent power withdrawn, phase 2"),
  SINSTS3: va("Instantaneous apparent power withdrawn, phase 3"),
  SMAXSN: vaH("Maximum apparent power withdrawn today"),
  SMAXSN1: vaH("Maximum apparent power withdrawn today, phase 1"),
  SMAXSN2: vaH("Maximum apparent power withdrawn today, phase 2"),
  SMAXSN3: vaH("Maximum apparent power withdrawn today, phase 3"),
  "SMAXSN-1": vaH("Maximum apparent power withdrawn yesterday"),
  "SMAXSN1-1": vaH("Maximum apparent power withdrawn yesterday, phase 1"),
  "SMAXSN2-1": vaH("Maximum apparent power withdrawn yesterday, phase 2"),
  "SMAXSN3-1": vaH("Maximum apparent power withdrawn yesterday, phase 3"),
  SINSTI: va("Instantaneous apparent power injected"),
  SMAXIN: vaH("Maximum apparent power injected today"),
  "SMAXIN-1": vaH("Maximum apparent power injected yesterday"),
  CCASN: wH("Active power load curve point withdrawn"),
  "CCASN-1": wH("Previous active power load curve point withdrawn"),
  CCAIN: wH("Active power load curve point injected"),
  "CCAIN-1": wH("Previous active power load curve point injected"),
  UMOY1: { ...volt("Mean voltage, phase 1"), horodate: true },
  UMOY2: { ...volt("Mean voltage, phase 2"), horodate: true },
  UMOY3: { ...volt("Mean voltage, phase 3"), horodate: true },
  STGE: str(/^[0-9A-F]{8}$/, "Status register (hex)"),
  DPM1: pm("Start of mobile peak 1"),
  FPM1: pm("End of mobile peak 1"),
  DPM2: pm("Start of mobile peak 2"),
  FPM2: pm("End of mobile peak 2"),
  DPM3: pm("Start of mobile peak 3"),
  FPM3: pm("End of mobile peak 3"),
  MSG1: text("Short message"),
  MSG2: text("Ultra-short message"),
  PRM: str(/^\d{14}$/, "Delivery point (PRM)"),
  RELAIS: str(/^(0\d\d|1\d\d|2[0-4]\d|25[0-5])$/, "Relays state (8 bits, 000-255)"),
  NTARF: str(/^(0[1-9]|10)$/, "Current tariff index number (01-10)"),
  NJOURF: str(/^\d{2}$/, "Current day number in the supplier calendar"),
  "NJOURF+1": str(/^\d{2}$/, "Next day number in the supplier calendar"),
  "PJOURF+1": { type: "string", format: /^[\x20-\x7e]{0,98}$/, description: "Next day profile" },
  PPOINTE: { type: "string", format: /^[\x20-\x7e]{0,98}$/, description: "Next peak day profile" },
};

export function pointId(label: string): string {
  return label.toLowerCase().replace(/\+/g, "p");
}

const defs: Record<TicMode, Record<string, LabelDef>> = {
  historic: Object.fromEntries(
    Object.entries(historic).map(([l, d]) => [l, { ...d, point: pointId(l) }]),
  ),
  standard: Object.fromEntries(
    Object.entries(standard).map(([l, d]) => [l, { ...d, point: pointId(l) }]),
  ),
};

export function labelDef(mode: TicMode, label: string): LabelDef | undefined {
  return defs[mode][label];
}

export function knownLabels(mode: TicMode): Record<string, LabelDef> {
  return defs[mode];
}

/**
 * Horodate SAAMMJJhhmmss: S = E (summer, UTC+2) or H (winter, UTC+1); lower case means the meter
 * clock is degraded; a space means the group carries no season (Enedis-NOI-CPT_54E §6.2.3.4):
 * the frame decides (see index.ts). Returns ISO 8601, with the offset when the season is known.
 */
export function parseHorodate(
  h: string,
): { iso: string; degraded: boolean; season?: "E" | "H" } | undefined {
  const m = /^([EeHh ])(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(h);
  if (!m) return undefined;
  const [, s, yy, mo, dd, hh, mi, ss] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (
    Number(mo) < 1 ||
    Number(mo) > 12 ||
    Number(dd) < 1 ||
    Number(dd) > 31 ||
    Number(hh) > 23 ||
    Number(mi) > 59 ||
    Number(ss) > 59
  )
    return undefined;
  const season = s === " " ? undefined : (s.toUpperCase() as "E" | "H");
  const offset = season === "E" ? "+02:00" : season === "H" ? "+01:00" : "";
  return {
    iso: `20${yy}-${mo}-${dd}T${hh}:${mi}:${ss}${offset}`,
    degraded: s === "e" || s === "h" || s === " ",
    ...(season ? { season } : {}),
  };
}

export interface DecodedGroup {
  label: string;
  point: string;
  unit?: string;
  value: number | string;
  /** ISO 8601 time of the value, standard-mode horodate (e.g. time of today's maximum). */
  time?: string;
  degradedClock?: boolean;
  /** The horodate's season letter was a space (no season in this group). */
  noSeason?: boolean;
}

/** `unknown`: a label this mode does not have (counted apart, never published). */
export type DecodeResult =
  { ok: true; decoded: DecodedGroup } | { ok: false; reason: string; unknown?: true };

/** Validate a checked group against its label's format and turn it into a typed value. */
export function decodeGroup(mode: TicMode, g: TicGroup): DecodeResult {
  const def = labelDef(mode, g.label);
  // The label sets are closed (Enedis-NOI-CPT_02E §6.2.2, -54E §6.2.3): a checksum-valid group
  // with another label is corruption the 6-bit sum missed ("PAP", "HCH" in fuzzing) or a label
  // of the other mode, never a point.
  if (!def)
    return { ok: false, unknown: true, reason: `label "${g.label}" is not a ${mode}-mode label` };
  if (Boolean(def.horodate) !== (g.horodate !== undefined))
    return { ok: false, reason: `${g.label}: horodate ${def.horodate ? "missing" : "unexpected"}` };
  if (!def.format.test(g.data))
    return { ok: false, reason: `${g.label}: data "${g.data}" does not match ${def.format}` };
  let time: string | undefined;
  let degradedClock: boolean | undefined;
  if (g.horodate !== undefined) {
    const h = parseHorodate(g.horodate);
    if (!h) return { ok: false, reason: `${g.label}: malformed horodate "${g.horodate}"` };
    time = h.iso;
    degradedClock = h.degraded;
  }
  // DATE carries its value in the horodate.
  const value =
    g.label === "DATE" ? time! : def.type === "number" ? Number(g.data) * (def.scale ?? 1) : g.data;
  return {
    ok: true,
    decoded: {
      label: g.label,
      point: def.point,
      ...(def.unit ? { unit: def.unit } : {}),
      value,
      ...(time ? { time } : {}),
      ...(degradedClock !== undefined ? { degradedClock } : {}),
      ...(g.horodate?.startsWith(" ") ? { noSeason: true } : {}),
    },
  };
}
