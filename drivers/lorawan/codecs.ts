/**
 * Where codec files live, and the codecs of a driver on shared workers (codec-pool.ts). Built-in codecs are
 * drivers/lorawan/codecs/<name>.js (shipped in the npm package); a config may also name an
 * absolute path to its own .js file.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { CodecSandbox, type CodecLimits } from "./codec-host.js";
import { CodecPool } from "./codec-pool.js";

/** drivers/lorawan/codecs/ from the sources (tests) or from dist/drivers/lorawan/ (installed). */
export function builtinCodecDir(): string {
  for (const rel of ["./codecs/", "../../../drivers/lorawan/codecs/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  return fileURLToPath(new URL("./codecs/", import.meta.url));
}

export function codecPath(ref: string): string {
  return ref.startsWith("/") ? ref : `${builtinCodecDir()}${ref}.js`;
}

export function loadCodecSource(ref: string): string {
  const path = codecPath(ref);
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EdgeError(
      ErrorCode.DriverConfig,
      `codec "${ref}" cannot be read from ${path} (${code === "ENOENT" ? "no such file" : String(code)}); use a built-in codec name or an absolute path to a .js file`,
      { codec: ref, path },
    );
  }
}

export class CodecRegistry {
  private readonly sandboxes = new Map<string, CodecSandbox>();
  private readonly pool: CodecPool;

  constructor(
    private readonly limits: CodecLimits,
    workers = 2,
  ) {
    this.pool = new CodecPool(limits, workers);
  }

  /** The sandbox of `ref`, created (and its source read) on first use. Throws EdgeError. */
  get(ref: string): CodecSandbox {
    let s = this.sandboxes.get(ref);
    if (!s) {
      s = new CodecSandbox(ref, loadCodecSource(ref), this.limits, this.pool);
      this.sandboxes.set(ref, s);
    }
    return s;
  }

  restarts(): number {
    return this.pool.restarts();
  }

  /** Worker threads started for these codecs (shared, and isolated ones). */
  workers(): number {
    return this.pool.workers();
  }

  async close(): Promise<void> {
    await Promise.all([...this.sandboxes.values()].map((s) => s.close()));
    await this.pool.close();
    this.sandboxes.clear();
  }
}
