/**
 * Value information (EN 13757-3:2018 §6.4, tables 10–16): VIF → quantity, SenML unit and the
 * decimal scale of the raw value. Units that SenML lacks are converted where a conversion is
 * exact and useful (J/h → W, bar → Pa, m3/min and m3/s → m3/h, MWh → Wh); the rest keep no
 * unit and name the meter's unit in `quantity` so nothing is silently mislabelled.
 */
export interface VifInfo {
  quantity: string;
  /** SenML unit of the scaled value, when one exists. */
  unit?: string;
  /** value = raw × scale (+ offset). */
  scale: number;
  /** What the value is: a number, a date (type G), a date+time (type F/I), or free text. */
  kind: "number" | "date" | "datetime" | "text";
  /** Not a standard quantity (manufacturer specific, reserved, plain text…). */
  special?: "manufacturer" | "reserved" | "plaintext" | "any";
}

/** 10^n as the correctly rounded literal (10 ** n may differ in the last bit). */
export function pow10(n: number): number {
  return Number(`1e${n}`);
}

const timeUnits = [1, 60, 3600, 86400];
const longTimeUnits = [3600, 86400, 2629743.83, 31556926]; // hours, days, months, years (as libmbus)

/** Primary VIF table (VIF & 0x7F), EN 13757-3 table 10. */
export function primaryVif(code: number): VifInfo {
  const n = code & 0x07;
  const nn = code & 0x03;
  if (code <= 0x07) return { quantity: "Energy", unit: "Wh", scale: pow10(n - 3), kind: "number" };
  if (code <= 0x0f) return { quantity: "Energy", unit: "J", scale: pow10(n), kind: "number" };
  if (code <= 0x17) return { quantity: "Volume", unit: "m3", scale: pow10(n - 6), kind: "number" };
  if (code <= 0x1f) return { quantity: "Mass", unit: "kg", scale: pow10(n - 3), kind: "number" };
  if (code <= 0x23)
    return { quantity: "On time", unit: "s", scale: timeUnits[nn]!, kind: "number" };
  if (code <= 0x27)
    return { quantity: "Operating time", unit: "s", scale: timeUnits[nn]!, kind: "number" };
  if (code <= 0x2f) return { quantity: "Power", unit: "W", scale: pow10(n - 3), kind: "number" };
  // kJ/h … : 1 J/h = 1/3600 W.
  if (code <= 0x37) return { quantity: "Power", unit: "W", scale: pow10(n) / 3600, kind: "number" };
  if (code <= 0x3f)
    return { quantity: "Volume flow", unit: "m3/h", scale: pow10(n - 6), kind: "number" };
  if (code <= 0x47)
    return { quantity: "Volume flow", unit: "m3/h", scale: pow10(n - 7) * 60, kind: "number" };
  if (code <= 0x4f)
    return { quantity: "Volume flow", unit: "m3/h", scale: pow10(n - 9) * 3600, kind: "number" };
  if (code <= 0x57) return { quantity: "Mass flow (kg/h)", scale: pow10(n - 3), kind: "number" };
  if (code <= 0x5b)
    return { quantity: "Flow temperature", unit: "Cel", scale: pow10(nn - 3), kind: "number" };
  if (code <= 0x5f)
    return { quantity: "Return temperature", unit: "Cel", scale: pow10(nn - 3), kind: "number" };
  if (code <= 0x63)
    return { quantity: "Temperature difference", unit: "K", scale: pow10(nn - 3), kind: "number" };
  if (code <= 0x67)
    return { quantity: "External temperature", unit: "Cel", scale: pow10(nn - 3), kind: "number" };
  // bar → Pa: 1 bar = 1e5 Pa; 10^(nn-3) bar = 10^(nn+2) Pa.
  if (code <= 0x6b)
    return { quantity: "Pressure", unit: "Pa", scale: pow10(nn + 2), kind: "number" };
  if (code === 0x6c) return { quantity: "Time point (date)", scale: 1, kind: "date" };
  if (code === 0x6d) return { quantity: "Time point (date & time)", scale: 1, kind: "datetime" };
  if (code === 0x6e) return { quantity: "H.C.A. units", scale: 1, kind: "number" };
  if (code === 0x6f) return { quantity: "Reserved", scale: 1, kind: "number", special: "reserved" };
  if (code <= 0x73)
    return { quantity: "Averaging duration", unit: "s", scale: timeUnits[nn]!, kind: "number" };
  if (code <= 0x77)
    return { quantity: "Actuality duration", unit: "s", scale: timeUnits[nn]!, kind: "number" };
  if (code === 0x78) return { quantity: "Fabrication No", scale: 1, kind: "number" };
  if (code === 0x79) return { quantity: "(Enhanced) Identification", scale: 1, kind: "number" };
  if (code === 0x7a) return { quantity: "Bus Address", scale: 1, kind: "number" };
  if (code === 0x7c)
    return { quantity: "Plain text", scale: 1, kind: "number", special: "plaintext" };
  if (code === 0x7e) return { quantity: "Any VIF", scale: 1, kind: "number", special: "any" };
  if (code === 0x7f)
    return { quantity: "Manufacturer specific", scale: 1, kind: "number", special: "manufacturer" };
  return { quantity: "Reserved", scale: 1, kind: "number", special: "reserved" };
}

const fdNames: Record<number, string> = {
  0x08: "Access number",
  0x09: "Medium",
  0x0a: "Manufacturer",
  0x0b: "Parameter set identification",
  0x0c: "Model / Version",
  0x0d: "Hardware version",
  0x0e: "Firmware version",
  0x0f: "Software version",
  0x10: "Customer location",
  0x11: "Customer",
  0x12: "Access code user",
  0x13: "Access code operator",
  0x14: "Access code system operator",
  0x15: "Access code developer",
  0x16: "Password",
  0x17: "Error flags",
  0x18: "Error mask",
  0x1a: "Digital output",
  0x1b: "Digital input",
  0x1c: "Baud rate",
  0x1d: "Response delay time (bit times)",
  0x1e: "Retry",
  0x20: "First storage number for cyclic storage",
  0x21: "Last storage number for cyclic storage",
  0x22: "Size of storage block",
  0x3a: "Dimensionless",
  0x60: "Reset counter",
  0x61: "Cumulation counter",
  0x62: "Control signal",
  0x63: "Day of week",
  0x64: "Week number",
  0x65: "Time point of day change",
  0x66: "State of parameter activation",
  0x67: "Special supplier information",
};

/** First extension table (VIF = FDh), EN 13757-3 table 14. */
export function fdVif(code: number): VifInfo {
  const nn = code & 0x03;
  if (code <= 0x03)
    return { quantity: "Credit (currency units)", scale: pow10(nn - 3), kind: "number" };
  if (code <= 0x07)
    return { quantity: "Debit (currency units)", scale: pow10(nn - 3), kind: "number" };
  if (code >= 0x24 && code <= 0x29)
    return {
      quantity: "Storage interval",
      unit: "s",
      scale: [1, 60, 3600, 86400, 2629743.83, 31556926][code - 0x24]!,
      kind: "number",
    };
  if (code >= 0x2c && code <= 0x2f)
    return {
      quantity: "Duration since last readout",
      unit: "s",
      scale: timeUnits[nn]!,
      kind: "number",
    };
  if (code === 0x30) return { quantity: "Start of tariff", scale: 1, kind: "datetime" };
  if (code >= 0x31 && code <= 0x33)
    return { quantity: "Duration of tariff", unit: "s", scale: timeUnits[nn]!, kind: "number" };
  if (code >= 0x34 && code <= 0x39)
    return {
      quantity: "Period of tariff",
      unit: "s",
      scale: [1, 60, 3600, 86400, 2629743.83, 31556926][code - 0x34]!,
      kind: "number",
    };
  if (code >= 0x40 && code <= 0x4f)
    return { quantity: "Voltage", unit: "V", scale: pow10((code & 0x0f) - 9), kind: "number" };
  if (code >= 0x50 && code <= 0x5f)
    return { quantity: "Current", unit: "A", scale: pow10((code & 0x0f) - 12), kind: "number" };
  if (code >= 0x68 && code <= 0x6b)
    return {
      quantity: "Duration since last cumulation",
      unit: "s",
      scale: longTimeUnits[nn]!,
      kind: "number",
    };
  if (code >= 0x6c && code <= 0x6f)
    return {
      quantity: "Operating time battery",
      unit: "s",
      scale: longTimeUnits[nn]!,
      kind: "number",
    };
  if (code === 0x70)
    return { quantity: "Date and time of battery change", scale: 1, kind: "datetime" };
  const name = fdNames[code];
  if (name) return { quantity: name, scale: 1, kind: "number" };
  return { quantity: "Reserved", scale: 1, kind: "number", special: "reserved" };
}

/**
 * Second extension table (VIF = FBh), EN 13757-3:2018 table 14. Codes the 2018 table still lists
 * as reserved keep their EN 13757-3:2004 meaning (US gallons, 22h and 24h–26h), as libmbus
 * decodes them. Units SenML lacks (°F, calories, US gallons) stay without a unit.
 */
export function fbVif(code: number): VifInfo {
  const n1 = code & 0x01;
  const nn = code & 0x03;
  const num = (quantity: string, scale: number, unit?: string): VifInfo => ({
    quantity,
    scale,
    kind: "number",
    ...(unit ? { unit } : {}),
  });
  if (code <= 0x01) return num("Energy", pow10(n1 + 5), "Wh"); // 10^(n-1) MWh
  if (code <= 0x03) return num("Reactive energy", pow10(n1 + 3), "varh"); // 10^n kvarh
  if (code <= 0x05) return num("Apparent energy", pow10(n1 + 3), "VAh"); // 10^n kVAh
  if (code === 0x06) return num("Coefficient of performance", 0.1);
  if (code >= 0x08 && code <= 0x09) return num("Energy", pow10(n1 + 8), "J"); // 10^(n-1) GJ
  if (code >= 0x0c && code <= 0x0f) return num("Energy (cal)", pow10(nn + 5)); // 10^(nn-1) MCal
  if (code >= 0x10 && code <= 0x11) return num("Volume", pow10(n1 + 2), "m3");
  if (code >= 0x14 && code <= 0x17) return num("Reactive power", pow10(nn), "var"); // 10^(nn-3) kvar
  if (code >= 0x18 && code <= 0x19) return num("Mass", pow10(n1 + 5), "kg"); // 10^(n+2) t
  if (code >= 0x1a && code <= 0x1b) return num("Relative humidity", pow10(n1 - 1), "%RH");
  if (code === 0x20) return num("Volume (feet^3)", 1);
  if (code === 0x21) return num("Volume (feet^3)", 0.1);
  if (code === 0x22) return num("Volume (US gallon)", 0.1);
  if (code === 0x23) return num("Phase angle I-U", 0.1, "deg");
  if (code === 0x24) return num("Volume flow (US gallon/min)", 1e-3);
  if (code === 0x25) return num("Volume flow (US gallon/min)", 1);
  if (code === 0x26) return num("Volume flow (US gallon/h)", 1);
  if (code >= 0x28 && code <= 0x29) return num("Power", pow10(n1 + 5), "W"); // 10^(n-1) MW
  if (code === 0x2a) return num("Phase angle U-U", 0.1, "deg");
  if (code === 0x2b) return num("Phase angle U-I", 0.1, "deg");
  if (code >= 0x2c && code <= 0x2f) return num("Frequency", pow10(nn - 3), "Hz");
  if (code >= 0x30 && code <= 0x31) return num("Power", pow10(n1 + 8) / 3600, "W"); // GJ/h
  if (code >= 0x34 && code <= 0x37) return num("Apparent power", pow10(nn), "VA"); // 10^(nn-3) kVA
  if (code >= 0x58 && code <= 0x5b) return num("Flow temperature (°F)", pow10(nn - 3));
  if (code >= 0x5c && code <= 0x5f) return num("Return temperature (°F)", pow10(nn - 3));
  if (code >= 0x60 && code <= 0x63) return num("Temperature difference (°F)", pow10(nn - 3));
  if (code >= 0x64 && code <= 0x67) return num("External temperature (°F)", pow10(nn - 3));
  if (code >= 0x68 && code <= 0x6e) {
    const names = [
      "Resulting rating factor",
      "Thermal output rating factor",
      "Thermal coupling rating factor overall",
      "Thermal coupling rating factor room side",
      "Thermal coupling rating factor heating side",
      "Low temperature rating factor",
      "Display output scaling factor",
    ];
    return num(`${names[code - 0x68]!} (H.C.A.)`, 1);
  }
  if (code >= 0x70 && code <= 0x73) return num("Cold/warm temperature limit (°F)", pow10(nn - 3));
  if (code >= 0x74 && code <= 0x77) return num("Cold/warm temperature limit", pow10(nn - 3), "Cel");
  if (code >= 0x78) return num("Cumulative count max power", pow10((code & 0x07) - 3), "W");
  return { quantity: "Reserved", scale: 1, kind: "number", special: "reserved" };
}

/** Medium codes of the fixed header (EN 13757-3 table 6). */
export const media: Record<number, string> = {
  0x00: "Other",
  0x01: "Oil",
  0x02: "Electricity",
  0x03: "Gas",
  0x04: "Heat (outlet)",
  0x05: "Steam",
  0x06: "Warm water",
  0x07: "Water",
  0x08: "Heat cost allocator",
  0x09: "Compressed air",
  0x0a: "Cooling (outlet)",
  0x0b: "Cooling (inlet)",
  0x0c: "Heat (inlet)",
  0x0d: "Heat / cooling",
  0x0e: "Bus / system component",
  0x0f: "Unknown",
  0x15: "Hot water",
  0x16: "Cold water",
  0x17: "Dual water",
  0x18: "Pressure",
  0x19: "A/D converter",
};

export function mediumName(code: number): string {
  return media[code] ?? `Reserved (0x${code.toString(16).padStart(2, "0")})`;
}
