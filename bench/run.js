#!/usr/bin/env node
// `npm run bench`: runs every compiled benchmark dist/bench/*.js (top level only; helpers live in
// dist/bench/lib/) as its own child process, one after the other so they do not compete for the
// two cores, and prints ONE JSON array of every JSON line they printed. A benchmark that fails
// or prints no JSON appears as {"bench": name, "error": …}; the exit code is then 1.
// Usage: node bench/run.js [name-filter]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "dist", "bench");
if (!existsSync(dir)) {
  process.stderr.write(`error: ${dir} does not exist — build first (npm run build)\n`);
  process.exit(1);
}
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".js") && f !== "run.js" && (!filter || f.includes(filter)))
  .sort();
const results = [];
let failed = false;
for (const f of files) {
  const name = f.replace(/\.js$/, "");
  process.stderr.write(`bench ${name} …\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(dir, f)], {
    cwd: root,
    encoding: "utf8",
    timeout: 180_000,
    maxBuffer: 16 << 20,
  });
  const lines = (r.stdout ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("{"));
  const parsed = [];
  for (const l of lines) {
    try {
      parsed.push(JSON.parse(l));
    } catch {
      // not a result line
    }
  }
  if (r.status !== 0 || parsed.length === 0) {
    failed = true;
    results.push({
      bench: name,
      error: r.error ? String(r.error) : `exit ${r.status ?? r.signal}`,
      stderr: (r.stderr ?? "").slice(-2000),
    });
  } else {
    for (const p of parsed)
      results.push({ ...p, wall_s: Number(((Date.now() - t0) / 1000).toFixed(1)) });
  }
}
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
process.exit(failed ? 1 : 0);
