/**
 * Codecs on shared workers (issue 17.5), with the real QuickJS sandbox and the Milesight codecs
 * of this repository: many codecs run on a fixed number of workers, codec globals are per device
 * (two devices sharing a codec never see each other's), and a codec that loops is moved to a
 * worker of its own so it stops delaying the codecs it shared one with.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CodecRegistry } from "../../drivers/lorawan/codecs.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-codec-pool-"));
const registries: CodecRegistry[] = [];
afterAll(async () => {
  await Promise.all(registries.map((r) => r.close()));
  rmSync(dir, { recursive: true, force: true });
});
const registry = (workers = 2, timeoutMs = 100) => {
  const r = new CodecRegistry({ timeoutMs, memoryBytes: 16 * 1024 * 1024 }, workers);
  registries.push(r);
  return r;
};
const am103 = readFileSync(
  new URL("../../drivers/lorawan/codecs/milesight-am103.js", import.meta.url),
  "utf8",
);
/** A codec file at an absolute path, as a config names one. */
const file = (name: string, source: string) => {
  const path = join(dir, `${name}.js`);
  writeFileSync(path, source);
  return path;
};
const frame = {
  bytes: Uint8Array.from(Buffer.from("01755c03671001046871077de704", "hex")),
  fPort: 85,
  recvTime: new Date("2026-01-01T00:00:00Z"),
};

describe("shared codec workers", () => {
  it("50 codecs run on 2 workers and decode as before", async () => {
    const reg = registry(2);
    const refs = Array.from({ length: 50 }, (_, i) => file(`am103-${i}`, `// copy ${i}\n${am103}`));
    const out = await Promise.all(refs.map((ref, i) => reg.get(ref).decode(frame, `dev-${i}`)));
    for (const r of out)
      expect(r).toMatchObject({ ok: true, value: { co2: 1255, temperature: 27.2, battery: 92 } });
    expect(reg.workers()).toBe(2);
  });

  it("codec globals are per device: two devices sharing a codec do not see each other's", async () => {
    // The AM103 codec with a global that counts the frames it decoded (state some real codecs
    // keep, e.g. to merge multi-frame payloads).
    const ref = file(
      "am103-counting",
      `${am103.replace(/function decodeUplink\(/, "function am103Decode(")}
var seen = 0;
function decodeUplink(input) { seen++; var r = am103Decode(input); r.data.seen = seen; return r; }
`,
    );
    const reg = registry(1);
    const codec = reg.get(ref);
    for (let i = 1; i <= 3; i++)
      expect(await codec.decode(frame, "co2-ecole")).toMatchObject({ value: { seen: i } });
    expect(await codec.decode(frame, "co2-mairie")).toMatchObject({ value: { seen: 1 } });
    expect(await codec.decode(frame, "co2-ecole")).toMatchObject({ value: { seen: 4 } });
  });

  it("a looping codec is moved to a worker of its own; its former neighbour is not delayed again", async () => {
    const reg = registry(1, 1000);
    const good = reg.get(file("am103-neighbour", am103));
    const bad = reg.get(
      file("looping", "function decodeUplink(i){ if (i.fPort === 9) for(;;){} return {data:{}} }"),
    );
    expect(await good.decode(frame, "a")).toMatchObject({ ok: true });
    expect(await bad.decode({ ...frame, fPort: 1 }, "b")).toMatchObject({ ok: true });
    expect(reg.workers()).toBe(1); // both on the one shared worker
    // First offence: it burns its 1 s limit on the shared worker.
    expect(await bad.decode({ ...frame, fPort: 9 }, "b")).toMatchObject({
      ok: false,
      kind: "timeout",
    });
    expect(bad.isolated()).toBe(true);
    expect(good.isolated()).toBe(false);
    // From now on its loops run in its own worker: the neighbour answers meanwhile.
    let badDone = false;
    const slow = bad.decode({ ...frame, fPort: 9 }, "b").finally(() => (badDone = true));
    let n = 0;
    while (!badDone && n < 5) {
      expect(await good.decode(frame, "a")).toMatchObject({ ok: true });
      n++;
    }
    expect(n).toBe(5);
    expect(badDone).toBe(false);
    expect(await slow).toMatchObject({ ok: false, kind: "timeout" });
    expect(reg.workers()).toBe(2);
  });
});
