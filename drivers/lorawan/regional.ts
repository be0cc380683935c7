/** EU868 regional parameters used by the class A scheduler (RP002-1.0.4 §2.4). */

/** Data rates DR0..DR6 as the packet forwarder writes them. */
export const EU868_DATR = [
  "SF12BW125",
  "SF11BW125",
  "SF10BW125",
  "SF9BW125",
  "SF8BW125",
  "SF7BW125",
  "SF7BW250",
] as const;

/** JOIN_ACCEPT_DELAY1/2 (s) and the default RECEIVE_DELAY1 (RP002 §2.4.10). */
export const JOIN_ACCEPT_DELAY1_S = 5;
export const RECEIVE_DELAY1_S = 1;

/** A PULL_RESP must reach the concentrator this long before its tmst (JIT queue margin). */
export const TX_MARGIN_MS = 100;

export const CODING_RATE = "4/5";

/** Maximum MACPayload-less FRMPayload size N per data rate, no repeater (RP002-1.0.4 §2.4.6). */
const MAX_N = [51, 51, 51, 115, 222, 222, 222, 222];

export function maxPayload(dr: number): number {
  return MAX_N[dr] ?? 51;
}

export function datrOfDr(dr: number): string {
  return EU868_DATR[dr] ?? EU868_DATR[0];
}
