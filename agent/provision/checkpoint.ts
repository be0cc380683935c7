/**
 * Fault injection for the power-cut tests: when ECLOR_EDGE_CRASH_AFTER names a step, the process
 * SIGKILLs itself right after that step (no cleanup, no flush — like pulling the plug). The tests
 * use it to cut power deterministically between every pair of steps; in production the variable
 * is never set and this is a string comparison.
 */
export type Checkpoint =
  | "bundle"
  | "key"
  | "csr"
  | "request"
  | "published"
  | "response"
  | "cert"
  | "state"
  | "token"
  | "renew-csr"
  | "renew-published"
  | "renew-cert"
  | "renew-promote";

export function checkpoint(step: Checkpoint): void {
  if (process.env.ECLOR_EDGE_CRASH_AFTER === step) process.kill(process.pid, "SIGKILL");
}
