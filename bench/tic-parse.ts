/**
 * Benchmark: TIC stream decoding (framing, checksums, label formats, typed values) in bytes/s,
 * next to the reference measured in the same run: one plain pass over the same bytes computing
 * the TIC checksum sum (the least any decoder must do: touch every byte once). For scale, a
 * standard-mode line carries 960 bytes/s (9600 baud, 10 bits per character).
 */
import { TicStreamParser } from "../drivers/tic/frame.js";
import { decodeGroup } from "../drivers/tic/labels.js";
import { TicMeterSim } from "../sim/tic/meter.js";

const FRAMES = 5000;
let t = Date.UTC(2026, 0, 15, 12, 0, 0);
const sim = new TicMeterSim({ mode: "standard", now: () => (t += 1000) });
const stream = Buffer.concat(Array.from({ length: FRAMES }, () => sim.nextFrame()));

function decodeOnce(): number {
  let values = 0;
  const p = new TicStreamParser((f) => {
    for (const g of f.groups) if (decodeGroup(f.mode, g).ok) values++;
  });
  // Feed in 64-byte chunks, as a serial port delivers them.
  for (let i = 0; i < stream.length; i += 64) p.feed(stream.subarray(i, i + 64));
  return values;
}

function sumOnce(): number {
  let s = 0;
  for (let i = 0; i < stream.length; i++) s = (s + stream[i]!) & 0xffff;
  return s;
}

function rate(fn: () => number, minMs = 3000): number {
  fn(); // warm-up
  let bytes = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    fn();
    bytes += stream.length;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (bytes / elapsed) * 1000;
}

const values = decodeOnce();
const decode = rate(decodeOnce);
const reference = rate(sumOnce);
process.stdout.write(
  `${JSON.stringify({
    bench: "tic-parse",
    figure: { name: "TIC stream decoded (bytes/s)", value: Math.round(decode) },
    reference: {
      name: "plain checksum pass over the same bytes (bytes/s)",
      value: Math.round(reference),
    },
    ratio: Number((decode / reference).toFixed(3)),
    frames: FRAMES,
    values_per_pass: values,
    line_rate_bytes_per_s: 960,
    headroom_vs_line: Math.round(decode / 960),
  })}\n`,
);
