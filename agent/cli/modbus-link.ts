/** The driver's link for the direct Modbus commands (read, write, scan), loaded on demand. */
import type { LinkEndpoint, ModbusLink } from "../../drivers/modbus/link.js";

export async function openLink(ep: LinkEndpoint, timeoutMs: number): Promise<ModbusLink> {
  const [{ ModbusLink }, { pino }] = await Promise.all([
    import("../../drivers/modbus/link.js"),
    import("pino"),
  ]);
  return new ModbusLink(ep, timeoutMs, pino({ level: "silent" }));
}
