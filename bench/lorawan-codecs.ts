/**
 * Benchmark: memory per LoRaWAN codec (issue 17.5). 50 distinct codec files (the three Milesight
 * codecs of drivers/lorawan/codecs/, each copy a codec of its own, as 50 device models would be)
 * are loaded into one driver's CodecRegistry (shared workers, a QuickJS runtime per codec and a
 * context per device) and each decodes a frame; the process RSS growth from the first codec to
 * the fiftieth, divided by 49, is the cost of an additional codec. Reference, same run: the RSS
 * growth of one codec in a sandbox with a worker and QuickJS module of its own — what every codec
 * cost before (issue 17.5: ~12 MiB each, 28 codecs = 432 MiB). Goal: ≤ 2 MiB per added codec.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { CodecSandbox } from "../drivers/lorawan/codec-host.js";
import { CodecRegistry, codecPath } from "../drivers/lorawan/codecs.js";

const CODECS = 50;
const limits = { timeoutMs: 100, memoryBytes: 32 * 1024 * 1024 };
const MiB = 1024 * 1024;
const FRAMES: Record<string, string> = {
  "milesight-am103": "01755c03671001046871077de704",
  "milesight-vs350": "017564 03670C01".replace(/ /g, ""),
  "milesight-em300-di": "85E164000A000000C84203",
};
const names = Object.keys(FRAMES);

const settle = () => new Promise((r) => setTimeout(r, 300));
// A full GC of the main thread before each figure, so its garbage is not counted.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
async function rss(): Promise<number> {
  await settle();
  gc();
  await settle();
  return process.memoryUsage().rss;
}

const dir = mkdtempSync(join(tmpdir(), "eclor-bench-codecs-"));
try {
  const files = Array.from({ length: CODECS }, (_, i) => {
    const name = names[i % names.length]!;
    const path = join(dir, `${name}-model-${i}.js`);
    writeFileSync(path, `// device model ${i}\n${readFileSync(codecPath(name), "utf8")}`);
    return { path, frame: Buffer.from(FRAMES[name]!, "hex") };
  });
  const decode = async (s: CodecSandbox, frame: Buffer, device: string) => {
    const r = await s.decode({ bytes: frame, fPort: 85, recvTime: new Date() }, device);
    if (!r.ok) throw new Error(`${s.name}: ${r.error}`);
  };

  // Reference: one codec with a worker and QuickJS module of its own (the former design).
  const before = await rss();
  const alone = new CodecSandbox("alone", readFileSync(files[0]!.path, "utf8"), limits);
  await decode(alone, files[0]!.frame, "d");
  const dedicated = (await rss()) - before;
  await alone.close();

  const reg = new CodecRegistry(limits, 2);
  const idle = await rss();
  await decode(reg.get(files[0]!.path), files[0]!.frame, "dev-0");
  // The second shared worker starts with the second codec: count it in the fixed cost.
  await decode(reg.get(files[1]!.path), files[1]!.frame, "dev-1");
  const two = await rss();
  for (let i = 2; i < CODECS; i++)
    await decode(reg.get(files[i]!.path), files[i]!.frame, `dev-${i}`);
  const all = await rss();
  const workers = reg.workers();
  await reg.close();

  const perCodec = (all - two) / (CODECS - 2) / MiB;
  process.stdout.write(
    `${JSON.stringify({
      bench: "lorawan-codecs",
      codecs: CODECS,
      workers,
      rss_mib: {
        before_pool: Number((idle / MiB).toFixed(1)),
        with_2_codecs: Number((two / MiB).toFixed(1)),
        with_50_codecs: Number((all / MiB).toFixed(1)),
      },
      fixed_cost_mib: Number(((two - idle) / MiB).toFixed(1)),
      mib_per_additional_codec: Number(perCodec.toFixed(2)),
      reference: {
        what: "RSS growth of one codec in a sandbox with its own worker and QuickJS module (the former per-codec design), same run",
        mib_per_codec: Number((dedicated / MiB).toFixed(1)),
      },
      goal: { mib_per_additional_codec: 2 },
      pass: perCodec <= 2,
      limits: { codec_timeout_ms: limits.timeoutMs, codec_memory_mb: limits.memoryBytes / MiB },
    })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
