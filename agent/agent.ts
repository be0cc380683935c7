/**
 * Wiring of the daemon: store, pipeline, drivers, uplink. (Filled in by the store-and-forward
 * work; until then `run` validates the config and refuses to start.)
 */
import type { Config } from "../config/schema.js";
import { EdgeError, ErrorCode } from "./errors.js";

export interface RunOptions {
  configPath: string;
}

export async function runAgent(_config: Config, _opts: RunOptions): Promise<void> {
  throw new EdgeError(
    ErrorCode.DriverStart,
    "the agent cannot run yet: the store-and-forward pipeline is not built",
  );
}
