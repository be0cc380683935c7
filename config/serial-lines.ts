/**
 * One serial path is one line: two drivers cannot both open it, and two different line settings
 * for it are a contradiction (issue 16 item 5). Checked across drivers at config validation, so
 * `eclor-edge config validate` names both drivers and their settings.
 */
import type { z } from "zod";
import type { DriverConfig } from "../drivers/schemas.js";

/** "9600 8N1" for the drivers that own a serial path; undefined for network drivers. */
function serialLine(d: DriverConfig): { path: string; line: string } | undefined {
  switch (d.driver) {
    case "modbus": {
      const t = d.transport;
      if (t.type !== "rtu") return;
      return {
        path: t.path,
        line: `${t.baud} ${t.data_bits}${t.parity[0]!.toUpperCase()}${t.stop_bits}`,
      };
    }
    case "mbus":
      return { path: d.path, line: `${d.baud} 8E1` };
    case "tic":
      return {
        path: d.path,
        line: d.mode === "standard" ? "9600 7E1" : d.mode === "historic" ? "1200 7E1" : "auto 7E1",
      };
    case "lorawan":
      return; // a UDP listener
  }
}

export function checkSerialLines(drivers: readonly DriverConfig[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, { i: number; id: string; line: string }>();
  drivers.forEach((d, i) => {
    if (!d.enabled) return;
    const s = serialLine(d);
    if (!s) return;
    const prev = seen.get(s.path);
    if (!prev) return void seen.set(s.path, { i, id: d.id, line: s.line });
    ctx.addIssue({
      code: "custom",
      path: ["drivers", i],
      message:
        prev.line !== s.line
          ? `serial line ${s.path} is set to ${s.line} here and to ${prev.line} by driver "${prev.id}" (drivers[${prev.i}]): one line has one setting; put the devices under one driver`
          : `serial line ${s.path} is already used by driver "${prev.id}" (drivers[${prev.i}]): two drivers cannot share a port; put the devices under one driver`,
    });
  });
}
