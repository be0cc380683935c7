/**
 * First stage: make every reading well-formed before anything durable sees it. A driver bug must
 * not poison the outbox with a record the hypervisor cannot parse, and must not vanish silently
 * either: the reading is kept with a `codec_error` quality that names the problem.
 */
import type { Reading } from "../../drivers/driver.js";
import type { Stage } from "./stage.js";

function fix(r: Reading): Reading {
  if (typeof r.value === "number" && !Number.isFinite(r.value)) {
    return { ...r, value: null, quality: "codec_error", detail: `driver produced ${r.value}` };
  }
  if (r.value === null && (r.quality === "good" || r.quality === "uncertain")) {
    return { ...r, quality: "codec_error", detail: r.detail ?? "driver produced no value" };
  }
  if (!Number.isFinite(r.ts)) return { ...r, ts: Date.now() };
  return r;
}

export const sanitizeStage: Stage = {
  name: "sanitize",
  process(readings) {
    let out: Reading[] | undefined;
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      const f = fix(r);
      if (f !== r) (out ??= readings.slice())[i] = f;
    }
    return out ?? readings;
  },
};
