/**
 * Read-back after each change, where the driver can say (the DALI gateway's per-lamp level and
 * status registers, drivers/modbus/profiles/dali-gateway.yaml): a lamp that does not follow the
 * level it was sent, or whose DALI status byte reports a failure (IEC 62386-102 §11.5.2 — bit 0
 * control gear failure, bit 1 lamp failure), becomes an event naming the lamp. Events are sent
 * when a lamp's condition changes (fault, then back to normal), not at every poll.
 */
import type { Logger } from "pino";
import type { LightingGroup } from "../../config/lighting.js";
import type { DriverEvent, Reading } from "../../drivers/driver.js";
import type { LightingTarget } from "./controller.js";

/** The gateway converts % to the logarithmic DALI arc power and back: allow its rounding. */
const TOLERANCE = 2;

export class FaultWatch {
  private readonly known = new Map<string, string>();

  constructor(
    private readonly target: LightingTarget,
    private readonly event: (e: DriverEvent) => void,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  async check(g: LightingGroup, level: number): Promise<void> {
    for (const lamp of g.lamps) {
      if (lamp.readback.length === 0) continue;
      const points = lamp.readback.flatMap((r) => (r.status ? [r.point, r.status] : [r.point]));
      let readings: Reading[];
      try {
        readings = await this.target.read(lamp.device, points);
      } catch (err) {
        this.logger.warn({ err, group: g.id, device: lamp.device }, "lighting read-back failed");
        continue;
      }
      const value = (p: string) =>
        readings.find((r) => r.point === p && (r.quality === "good" || r.quality === "uncertain"))
          ?.value;
      for (const rb of lamp.readback) {
        const name = rb.name ?? `${lamp.device}/${rb.point}`;
        const got = value(rb.point);
        const status = rb.status ? value(rb.status) : undefined;
        const problems: string[] = [];
        if (typeof status === "number") {
          if (status & 0b01) problems.push("control gear failure");
          if (status & 0b10) problems.push("lamp failure");
        }
        if (typeof got === "number" && Math.abs(got - level) > TOLERANCE)
          problems.push(`does not follow: reads ${got} %, sent ${level} %`);
        this.report(g, lamp.device, rb.point, name, problems, {
          level,
          read: got ?? null,
          status: status ?? null,
        });
      }
    }
  }

  private report(
    g: LightingGroup,
    device: string,
    point: string,
    name: string,
    problems: string[],
    data: Record<string, unknown>,
  ): void {
    const key = `${device}/${point}`;
    const now = problems.join("; ");
    const before = this.known.get(key) ?? "";
    if (now === before) return;
    this.known.set(key, now);
    const failure = problems.some((p) => p.endsWith("failure"));
    this.event({
      ts: this.now(),
      type:
        now === ""
          ? "lighting_lamp_ok"
          : failure
            ? "lighting_lamp_failure"
            : "lighting_lamp_not_following",
      severity: now === "" ? "info" : "error",
      device,
      message:
        now === ""
          ? `lighting: lamp ${name} (group "${g.id}") follows again`
          : `lighting: lamp ${name} (group "${g.id}"): ${now}`,
      data: { group: g.id, lamp: name, device, point, problems, ...data },
    });
  }
}
