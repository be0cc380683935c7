/** Issue 16 item 4: readings print exactly as the driver gave them (no 12-digit rounding). */
import { describe, expect, it } from "vitest";
import { formatValue } from "../../agent/cli/format.js";
import { oneBasedHint } from "../../agent/cli/modbus.js";

describe("modbus values in the CLI", () => {
  it("prints integers and floats exactly", () => {
    const f = (value: number) => formatValue({ value, quality: "good" });
    expect(f(-4822678189205111)).toBe("-4822678189205111");
    expect(f(3.14159)).toBe("3.14159");
    expect(formatValue({ value: 230.1, unit: "V", quality: "good" })).toBe("230.1 V");
  });

  it("hints at 1-based references, and only for them", () => {
    expect(oneBasedHint("holding", 40001)).toMatch(/-a 0$/);
    expect(oneBasedHint("input", 30011)).toMatch(/-a 10$/);
    expect(oneBasedHint("holding", 400101)).toMatch(/\(400001 = holding 0\).*-a 100$/);
    expect(oneBasedHint("holding", 100)).toBeUndefined();
    expect(oneBasedHint("coil", 40001)).toBeUndefined();
  });
});
