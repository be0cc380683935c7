/**
 * The shipped codecs against the vendors' published example payloads, run in the real QuickJS
 * sandbox (worker thread), and the sandbox against misbehaving codecs.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CodecSandbox } from "../../drivers/lorawan/codec-host.js";
import { CodecRegistry, loadCodecSource } from "../../drivers/lorawan/codecs.js";

const limits = { timeoutMs: 100, memoryBytes: 16 * 1024 * 1024 };
const registry = new CodecRegistry(limits);
const opened: CodecSandbox[] = [];
afterAll(async () => {
  await registry.close();
  await Promise.all(opened.map((s) => s.close()));
});

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const decode = (codec: string, payload: string, fPort = 85) =>
  registry
    .get(codec)
    .decode({ bytes: hex(payload), fPort, recvTime: new Date("2026-01-01T00:00:00Z") });

describe("milesight-am103 (CO2)", () => {
  it("AM103L example from the vendor's table", async () => {
    const r = await decode("milesight-am103", "017564 03671801 04686D 077DC501");
    expect(r).toEqual({
      ok: true,
      value: { battery: 100, temperature: 28, humidity: 54.5, co2: 453 },
      warnings: [],
    });
  });
  it("EM500-CO2 example (CO2 on channel 5, pressure)", async () => {
    const r = await decode("milesight-am103", "01756403671901 046873 057D6704 06736827");
    expect(r.ok && r.value).toEqual({
      battery: 100,
      temperature: 28.1,
      humidity: 57.5,
      co2: 1127,
      pressure: 1008.8,
    });
  });
  it("negative temperature, history record and device-information channels", async () => {
    const r = await decode("milesight-am103", "FF0BFF FF0101 0367F6FF 20CE9E744663F6FF6D C501");
    expect(r.ok && r.value).toEqual({
      temperature: -1,
      history: [{ timestamp: 1665561758, temperature: -1, humidity: 54.5, co2: 453 }],
    });
  });
  it("reports an unknown channel as a codec error", async () => {
    const r = await decode("milesight-am103", "0999AA");
    expect(r).toMatchObject({ ok: false, kind: "errors" });
  });
  it("encodes report_interval and reboot downlinks, refuses out-of-range values", async () => {
    const s = registry.get("milesight-am103");
    expect(await s.encode({ report_interval: 1200 })).toEqual({
      ok: true,
      value: { fPort: 85, bytes: Buffer.from("ff03b004", "hex") },
      warnings: [],
    });
    expect(await s.encode({ reboot: true })).toMatchObject({
      ok: true,
      value: { fPort: 85, bytes: Buffer.from("ff10ff", "hex") },
    });
    expect(await s.encode({ report_interval: 5 })).toMatchObject({
      ok: false,
      kind: "errors",
      error: /60\.\.64800/,
    });
  });
});

describe("milesight-vs350 (people counter)", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["017564 03670C01", { battery: 100, temperature: 26.8 }],
    ["04CC12001600 05CC13001400", { total_in: 18, total_out: 22, period_in: 19, period_out: 20 }],
    [
      "84CC0111081101 85CCE803E90301",
      {
        total_in: 4353,
        total_out: 4360,
        period_in: 1000,
        period_out: 1001,
        total_count_alarm: "threshold alarm",
        period_count_alarm: "threshold alarm",
      },
    ],
    ["8367360101", { temperature: 31, temperature_alarm: "threshold alarm" }],
    ["8367220100", { temperature: 29, temperature_alarm: "threshold alarm release" }],
    ["8367500103", { temperature: 33.6, temperature_alarm: "high temperature alarm" }],
    ["83673E0104", { temperature: 31.8, temperature_alarm: "high temperature alarm release" }],
    [
      "20CE7B3AF164000B000400",
      { history: [{ period_in: 11, period_out: 4, timestamp: 1693530747 }] },
    ],
    [
      "20CEFF3DF16401070002001D000800",
      {
        history: [
          { period_in: 7, period_out: 2, total_in: 29, total_out: 8, timestamp: 1693531647 },
        ],
      },
    ],
  ];
  it.each(cases)("vendor example %s", async (payload, want) => {
    const r = await decode("milesight-vs350", payload);
    expect(r.ok && r.value).toEqual(want);
  });
  it("a truncated frame is an error, not a half reading", async () => {
    expect(await decode("milesight-vs350", "04CC1200")).toMatchObject({
      ok: false,
      kind: "errors",
      error: "payload truncated",
    });
  });
});

describe("milesight-em300-di (water meter pulse counter)", () => {
  it("vendor example with a history record", async () => {
    const r = await decode(
      "milesight-em300-di",
      "01755C 03673401 046865 20CE9E74466310015D020000010000",
    );
    expect(r.ok && r.value).toEqual({
      battery: 92,
      temperature: 30.8,
      humidity: 50.5,
      history: [{ temperature: 27.2, humidity: 46.5, pulse: 256, timestamp: 1665561758 }],
    });
  });
  it("pulse counter and water volume (float32) channels", async () => {
    // 05 C8: 123456 pulses; 05 E1: 1 l/pulse conversion (10/10), 1234.5 as IEEE-754 LE (0x449A5000).
    const r = await decode("milesight-em300-di", "05C840E20100 05E10A000A0000509A44 050001");
    expect(r.ok && r.value).toEqual({
      pulse: 123456,
      water_conv: 1,
      pulse_conv: 1,
      water: 1234.5,
      gpio: "high",
    });
  });
  it("water alarm", async () => {
    const r = await decode("milesight-em300-di", "85E164000A000000C84203");
    expect(r.ok && r.value).toEqual({
      water_conv: 10,
      pulse_conv: 1,
      water: 100,
      water_alarm: "water flow timeout alarm",
    });
  });
});

describe("codec sandbox", () => {
  const sandbox = (name: string, src: string, timeoutMs = 100) => {
    const s = new CodecSandbox(name, src, { timeoutMs, memoryBytes: 16 * 1024 * 1024 });
    opened.push(s);
    return s;
  };
  const input = { bytes: Uint8Array.of(1, 2), fPort: 1, recvTime: new Date() };

  it("stops an infinite loop within the limit and keeps working", async () => {
    const s = sandbox(
      "loop",
      "function decodeUplink(i){ if (i.bytes[0] === 1) { for(;;){} } return {data:{ok:true}} }",
    );
    await s.decode({ ...input, bytes: Uint8Array.of(0) }); // warm up: worker start-up is not the limit
    const t0 = Date.now();
    const r = await s.decode(input);
    expect(r).toMatchObject({ ok: false, kind: "timeout" });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await s.decode({ ...input, bytes: Uint8Array.of(0) })).toMatchObject({
      ok: true,
      value: { ok: true },
    });
  });

  it("stops memory bombs (object heap, big arrays, strings, typed arrays)", async () => {
    const s = sandbox(
      "bomb",
      `function decodeUplink(i){ var a=[];
        if (i.fPort===1) while(true) a.push({x:[1,2,3]});
        if (i.fPort===2) while(true) a.push(new Array(100000).fill(1));
        if (i.fPort===3) while(true) a.push('x'.repeat(1000000)+a.length);
        if (i.fPort===4) while(true) a.push(new Uint8Array(1000000));
        return {data:{n:i.bytes.length}} }`,
      // Generous time limit: these must be stopped by the memory limits, even on a loaded machine.
      10_000,
    );
    for (const fPort of [1, 2, 3, 4]) {
      const r = await s.decode({ ...input, fPort });
      expect(r, `fPort ${fPort}`).toMatchObject({ ok: false, kind: "memory" });
    }
    expect(await s.decode({ ...input, fPort: 9 })).toMatchObject({ ok: true, value: { n: 2 } });
  });

  it("other codecs keep decoding while one loops", async () => {
    const bad = sandbox("loop2", "function decodeUplink(i){ for(;;){} }", 1000);
    const good = registry.get("milesight-am103");
    await good.decode({ ...input, bytes: hex("017564") });
    let badDone = false;
    const slow = bad.decode(input).finally(() => (badDone = true));
    // While the looping codec burns its 1 s limit in its own worker, the other one answers.
    let n = 0;
    while (!badDone && n < 5) {
      const r = await good.decode({ ...input, bytes: hex("017564") });
      expect(r.ok).toBe(true);
      n++;
    }
    expect(n).toBe(5);
    expect(badDone).toBe(false);
    expect(await slow).toMatchObject({ ok: false, kind: "timeout" });
  });

  it("reports exceptions, `errors`, missing data and syntax errors", async () => {
    expect(
      await sandbox("throws", "function decodeUplink(){ throw new Error('bad frame') }").decode(
        input,
      ),
    ).toMatchObject({ ok: false, kind: "exception", error: "bad frame" });
    expect(
      await sandbox(
        "errs",
        "function decodeUplink(){ return {errors:['e1','e2'], warnings:['w']} }",
      ).decode(input),
    ).toEqual({ ok: false, kind: "errors", error: "e1; e2", warnings: ["w"] });
    expect(
      await sandbox("nodata", "function decodeUplink(){ return 42 }").decode(input),
    ).toMatchObject({ ok: false, kind: "invalid" });
    expect(await sandbox("syntax", "function decodeUplink({ ").decode(input)).toMatchObject({
      ok: false,
      kind: "crashed",
      error: /does not load/,
    });
    expect(
      await sandbox("noenc", "function decodeUplink(){ return {data:{}} }").encode({ x: 1 }),
    ).toMatchObject({ ok: false, error: /no encodeDownlink/ });
    expect(
      await sandbox("badenc", "function encodeDownlink(){ return {bytes:[300], fPort: 1} }").encode(
        { x: 1 },
      ),
    ).toMatchObject({ ok: false, kind: "invalid" });
  });

  it("gives the codec TTN's input: bytes array, fPort, recvTime as a Date", async () => {
    const s = sandbox(
      "echo",
      "function decodeUplink(i){ return {data:{n:i.bytes.length, arr: Array.isArray(i.bytes), port:i.fPort, year:i.recvTime.getUTCFullYear()}} }",
    );
    expect(
      await s.decode({
        bytes: Uint8Array.of(1, 2, 3),
        fPort: 7,
        recvTime: new Date("2026-03-01T00:00:00Z"),
      }),
    ).toMatchObject({ ok: true, value: { n: 3, arr: true, port: 7, year: 2026 } });
  });

  it("refuses an unknown codec name with a clear error", () => {
    expect(() => loadCodecSource("no-such-codec")).toThrow(
      /EE0401 codec "no-such-codec" cannot be read/,
    );
  });
});
