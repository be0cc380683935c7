/**
 * Simulated devices serving the shipped profiles with plausible, moving values:
 *   - eastron-sdm630: three phases around 230 V, currents that wander, an import energy
 *     counter that grows with the power actually drawn;
 *   - dali-gateway: lamp levels that follow writes (per lamp, per group, broadcast), DALI status
 *     bytes that follow the levels, one failed lamp to find;
 *   - registers: N holding registers counting up on every tick (for benchmarks).
 */
import type { ModbusSimulator } from "./server.js";
import type { RegisterBank, SimUnit, UnitBehaviour } from "./pdu.js";

export const simDeviceKinds = ["eastron-sdm630", "dali-gateway", "registers"] as const;
export type SimDeviceKind = (typeof simDeviceKinds)[number];

export interface Sdm630State {
  /** Per-phase current (A); power follows. Tests may set them. */
  currents: [number, number, number];
  importKwh: number;
}

export function sdm630(
  bank: RegisterBank,
  opts: { noise?: boolean } = {},
): UnitBehaviour & { state: Sdm630State } {
  const state: Sdm630State = { currents: [12.5, 9.8, 14.1], importKwh: 15234.5 };
  const noise = opts.noise ?? true;
  // Map the whole 0x0000..0x0180 range like the meter (unlisted registers read as zero).
  bank.map("input", 0, 0x180);
  const write = (dtMs: number) => {
    let total = 0;
    for (let ph = 0; ph < 3; ph++) {
      const v = 230 + (noise ? Math.sin(Date.now() / 60_000 + ph) * 2 : 0);
      const i = state.currents[ph]!;
      const pf = 0.95;
      const p = v * i * pf;
      total += p;
      bank.setFloat32("input", 0x0000 + ph * 2, v);
      bank.setFloat32("input", 0x0006 + ph * 2, i);
      bank.setFloat32("input", 0x000c + ph * 2, p);
      bank.setFloat32("input", 0x0012 + ph * 2, v * i);
      bank.setFloat32("input", 0x0018 + ph * 2, v * i * Math.sqrt(1 - pf * pf));
      bank.setFloat32("input", 0x001e + ph * 2, pf);
      bank.setFloat32("input", 0x00c8 + ph * 2, v * Math.sqrt(3));
    }
    // Energy grows with the power drawn during the elapsed time: kWh += W × h / 1000.
    state.importKwh += (total * dtMs) / 3_600_000 / 1000;
    bank.setFloat32("input", 0x0034, total);
    bank.setFloat32("input", 0x0046, 50 + (noise ? Math.sin(Date.now() / 7000) * 0.02 : 0));
    bank.setFloat32("input", 0x0048, state.importKwh);
    bank.setFloat32("input", 0x004a, 0);
    bank.setFloat32("input", 0x0156, state.importKwh);
  };
  write(0);
  return {
    state,
    tick(dtMs) {
      if (noise)
        for (let ph = 0; ph < 3; ph++)
          state.currents[ph] = Math.max(0, state.currents[ph]! + (Math.random() - 0.5) * 0.4);
      write(dtMs);
    },
  };
}

export interface DaliOptions {
  /** Lamps present at short addresses 0..lamps-1. */
  lamps?: number;
  /** Short addresses whose lamp has failed (status bit 1). */
  failed?: number[];
}

/** Lamp a is in group a % 4 (alternate lamps on separate circuits); groups 4..15 are empty. */
export function dali(bank: RegisterBank, opts: DaliOptions = {}): UnitBehaviour {
  const lamps = opts.lamps ?? 16;
  const failed = new Set(opts.failed ?? [3]);
  bank.map("holding", 0, 64);
  bank.map("input", 100, 64);
  bank.map("holding", 200, 16);
  bank.map("holding", 300, 1);
  bank.map("input", 400, 2);
  bank.set("input", 400, lamps);
  bank.set("input", 401, 0b01); // bus power present, no bus error
  const setLamp = (a: number, level: number) => {
    if (a >= lamps) return;
    bank.holding[a] = failed.has(a) ? 0 : level;
    // DALI status byte (IEC 62386-102 §11.5.2): bit 1 lamp failure, bit 2 lamp arc power on.
    bank.input[100 + a] = (failed.has(a) ? 0b010 : 0) | (!failed.has(a) && level > 0 ? 0b100 : 0);
  };
  for (let a = 0; a < lamps; a++) setLamp(a, 100);
  return {
    beforeWrite(table, _address, values) {
      if (table !== "holding") return 2;
      if (values.some((v) => v > 100)) return 3; // illegal data value: levels are 0..100 %
      return undefined;
    },
    afterWrite(_table, address, values) {
      values.forEach((level, i) => {
        const reg = address + i;
        if (reg < 64) setLamp(reg, level);
        else if (reg >= 200 && reg < 204) for (let a = reg - 200; a < 64; a += 4) setLamp(a, level);
        else if (reg === 300) for (let a = 0; a < 64; a++) setLamp(a, level);
      });
    },
  };
}

/** `count` holding registers from 0 that count up on every tick (benchmarks). */
export function counting(bank: RegisterBank, count: number): UnitBehaviour {
  bank.map("holding", 0, count);
  for (let i = 0; i < count; i++) bank.holding[i] = i;
  return {
    tick() {
      for (let i = 0; i < count; i++) bank.holding[i] = (bank.holding[i]! + 1) & 0xffff;
    },
  };
}

export function addSimDevice(
  sim: ModbusSimulator,
  unitId: number,
  kind: SimDeviceKind,
  opts: { strict?: boolean } = {},
): SimUnit {
  const unit = sim.addUnit(unitId, {}, opts);
  unit.behaviour =
    kind === "eastron-sdm630"
      ? sdm630(unit.bank)
      : kind === "dali-gateway"
        ? dali(unit.bank)
        : counting(unit.bank, 50);
  return unit;
}
