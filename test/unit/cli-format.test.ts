/**
 * Pure pieces of the technician CLI: time and argument parsing, tables, CSV quoting, the scan's
 * measured timeout and progress line, the agent's bus list and stored-row decoding.
 */
import { describe, expect, it } from "vitest";
import { configSchema } from "../../config/schema.js";
import { busesOf, readingOfRow } from "../../agent/control/agent-backend.js";
import { coerceValue } from "../../agent/control/handlers.js";
import { LineSplitter } from "../../agent/control/protocol.js";
import { LogRing } from "../../agent/control/logring.js";
import { csvRow } from "../../agent/cli/buffer.js";
import { sameBus } from "../../agent/cli/bus-owner.js";
import { ago, bytes, duration, parseTime, table } from "../../agent/cli/format.js";
import { parseEndpoint, parseRegisterRequest } from "../../agent/cli/modbus-args.js";
import { measuredTimeout, progressLine } from "../../agent/cli/modbus-scan.js";
import { isEdgeError } from "../../core/errors.js";

const bus = { baud: "9600", parity: "none", dataBits: "8", stopBits: "1", timeout: "1000" };
const reg = { ...bus, unit: "1", table: "holding", address: "0", count: "1", order: "ABCD" };

function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(isEdgeError(e) && e.exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error("expected a throw");
}

describe("format", () => {
  it("parses times: ISO, epoch ms, ages; refuses the rest", () => {
    const now = Date.UTC(2026, 10, 25, 12);
    expect(parseTime("2026-11-25T08:00Z", now)).toBe(Date.UTC(2026, 10, 25, 8));
    expect(parseTime("1795600000000", now)).toBe(1795600000000);
    expect(parseTime("2h", now)).toBe(now - 7_200_000);
    expect(parseTime("7d", now)).toBe(now - 7 * 86_400_000);
    for (const bad of ["yesterday", "2 h", "12", "2026-13-45"])
      expect(parseTime(bad, now)).toBeUndefined();
  });

  it("ages, durations and sizes in words", () => {
    expect(ago(undefined)).toBe("never");
    expect(ago(1000, 1500)).toBe("just now");
    expect(ago(0, 90_000)).toBe("1 min 30 s ago");
    expect(duration(3 * 3_600_000 + 5 * 60_000)).toBe("3 h 5 min");
    expect(duration(50 * 3_600_000)).toBe("2 d 2 h");
    expect(bytes(512)).toBe("512 B");
    expect(bytes(5 * 1024 * 1024)).toBe("5.0 MiB");
    expect(bytes(512 * 1024 * 1024)).toBe("512 MiB");
  });

  it("aligns tables without padding the last column", () => {
    expect(
      table(
        ["A", "BB"],
        [
          ["xxx", "y"],
          ["z", ""],
        ],
      ),
    ).toBe("A    BB\nxxx  y\nz");
  });

  it("quotes CSV fields per RFC 4180", () => {
    expect(
      csvRow({ seq: 1, device: "d", point: "p", ts: 0, value: 'a "b", c', quality: "good" }),
    ).toBe('1,0,1970-01-01T00:00:00.000Z,d,p,"a ""b"", c",,good,');
  });
});

describe("modbus arguments", () => {
  it("TARGET: a /dev path is RTU, host[:port] is TCP", () => {
    expect(parseEndpoint("/dev/ttyUSB0", bus)).toMatchObject({
      type: "rtu",
      path: "/dev/ttyUSB0",
      baud: 9600,
      parity: "none",
    });
    expect(parseEndpoint("10.0.0.5", bus)).toEqual({
      type: "tcp",
      host: "10.0.0.5",
      port: 502,
      concurrency: 1,
    });
    expect(parseEndpoint("gw.local:1502", { ...bus, mode: "rtu-over-tcp" })).toMatchObject({
      type: "rtu_over_tcp",
      port: 1502,
    });
    expect(thrown(() => parseEndpoint("10.0.0.5:99999", bus))).toContain(
      'TARGET port: expected an integer 1..65535, got "99999"',
    );
    expect(thrown(() => parseEndpoint("/dev/x", { ...bus, parity: "mark" }))).toContain(
      "--parity: expected none, even or odd",
    );
  });

  it("tables accept mbpoll's numbers; types must fit the table", () => {
    expect(parseRegisterRequest({ ...reg, table: "4", type: "float32" })).toMatchObject({
      table: "holding",
      type: "float32",
    });
    expect(parseRegisterRequest({ ...reg, table: "0" })).toMatchObject({
      table: "coil",
      type: "bool",
    });
    expect(thrown(() => parseRegisterRequest({ ...reg, table: "coil", type: "uint16" }))).toContain(
      "--type: coil values are bool",
    );
    expect(thrown(() => parseRegisterRequest({ ...reg, order: "ACBD" }))).toContain(
      "--order: expected ABCD",
    );
    expect(thrown(() => parseRegisterRequest({ ...reg, count: "126" }))).toContain(
      "--count: expected an integer 1..125",
    );
    expect(thrown(() => parseRegisterRequest({ ...reg, unit: "0" }))).toContain(
      "--unit: expected an integer 1..255",
    );
  });
});

describe("scan", () => {
  it("measures the timeout from the slowest answer, within bounds", () => {
    expect(measuredTimeout(undefined, 50, 1000)).toBe(1000);
    expect(measuredTimeout(2, 50, 1000)).toBe(50);
    expect(measuredTimeout(40, 50, 1000)).toBe(140);
    expect(measuredTimeout(900, 50, 1000)).toBe(1000);
  });

  it("draws a progress line with ETA and timeout", () => {
    expect(progressLine(0, 10, 0, 1000, false, 0, 10)).toBe(
      "[----------] 0/10 0% · ETA … · timeout 1000 ms · found 0",
    );
    expect(progressLine(5, 10, 5000, 140, true, 2, 10)).toBe(
      "[#####-----] 5/10 50% · ETA 5 s · timeout 140 ms (measured) · found 2",
    );
  });
});

describe("control pieces", () => {
  it("splits lines across chunks and refuses an endless one", () => {
    const lines: string[] = [];
    let overflow = 0;
    const s = new LineSplitter(
      (l) => lines.push(l),
      () => overflow++,
      10,
    );
    s.push('{"a"');
    s.push(":1}\n\n{}\n");
    expect(lines).toEqual(['{"a":1}', "{}"]);
    s.push("x".repeat(11));
    expect(overflow).toBe(1);
  });

  it("keeps the last lines of the log, numbered, even split mid-line", () => {
    const ring = new LogRing(2);
    ring.write("a\nb");
    ring.write("\nc\n");
    expect(ring.recent()).toEqual([
      { n: 2, line: "b" },
      { n: 3, line: "c" },
    ]);
    expect(ring.recent(0)).toEqual([]);
  });

  it("converts CLI text to the point's type, leaving the rest for the router to refuse", () => {
    expect(coerceValue("number", "40")).toBe(40);
    expect(coerceValue("number", "")).toBe("");
    expect(coerceValue("number", "abc")).toBe("abc");
    expect(coerceValue("boolean", "ON")).toBe(true);
    expect(coerceValue("boolean", "0")).toBe(false);
    expect(coerceValue("string", "12")).toBe("12");
  });

  it("decodes stored SenML rows back to readings", () => {
    expect(
      readingOfRow({ seq: 5, ts: 1000, name: "m/p", body: '{"n":"m/p","t":1,"u":"V","v":230.1}' }),
    ).toEqual({
      seq: 5,
      device: "m",
      point: "p",
      ts: 1000,
      value: 230.1,
      unit: "V",
      quality: "good",
    });
    expect(
      readingOfRow({
        seq: 6,
        ts: 1000,
        name: "m/q",
        body: '{"n":"m/q","t":1,"q":"timeout","qd":"no answer"}',
      }),
    ).toMatchObject({
      value: null,
      quality: "timeout",
      detail: "no answer",
    });
    expect(readingOfRow({ seq: 7, ts: 1000, name: null, body: "{}" })).toBeUndefined();
  });

  it("lists the agent's buses from its configuration, per TCP endpoint", async () => {
    const cfg = configSchema.parse({
      version: 1,
      gateway: { id: "gw" },
      uplink: { url: "mqtt://h:1883" },
      drivers: [
        {
          id: "rs485",
          driver: "modbus",
          transport: { type: "rtu", path: "/dev/ttyUSB0" },
          devices: [{ id: "m1", unit_id: 12, points: [{ id: "v", table: "input", address: 0 }] }],
        },
        {
          id: "plc",
          driver: "modbus",
          transport: { type: "tcp", host: "10.0.0.5" },
          devices: [
            { id: "a", unit_id: 1, points: [{ id: "v", table: "input", address: 0 }] },
            {
              id: "b",
              unit_id: 1,
              host: "10.0.0.6",
              points: [{ id: "v", table: "input", address: 0 }],
            },
          ],
        },
      ],
    });
    const buses = busesOf(cfg);
    expect(buses).toEqual([
      {
        driver: "rs485",
        kind: "modbus",
        path: "/dev/ttyUSB0",
        devices: [{ id: "m1", address: 12 }],
      },
      {
        driver: "plc",
        kind: "modbus",
        host: "10.0.0.5",
        port: 502,
        devices: [{ id: "a", address: 1 }],
      },
      {
        driver: "plc",
        kind: "modbus",
        host: "10.0.0.6",
        port: 502,
        devices: [{ id: "b", address: 1 }],
      },
    ]);
    expect(await sameBus(buses[1]!, { host: "10.0.0.5", port: 502 })).toBe(true);
    expect(await sameBus(buses[1]!, { host: "10.0.0.5", port: 503 })).toBe(false);
    expect(await sameBus(buses[2]!, { host: "10.0.0.5", port: 502 })).toBe(false);
    expect(await sameBus(buses[0]!, { path: "/dev/ttyUSB0" })).toBe(true);
    // Resolved addresses (issue 14.7): every spelling of this machine is the same host.
    const local = { driver: "d", kind: "modbus", host: "127.0.0.1", port: 502, devices: [] };
    for (const host of ["127.1", "[::ffff:127.0.0.1]", "::1", "localhost", "0.0.0.0"])
      expect(await sameBus(local, { host, port: 502 })).toBe(true);
  });
});
