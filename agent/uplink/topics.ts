/** MQTT topics of one gateway (fixed contract, docs/mqtt-api.md). */
export interface Topics {
  base: string;
  state: string;
  inventory: string;
  /** Part `i` (≥ 2) of an inventory split to fit the broker (docs/mqtt-api.md §6). */
  inventoryPart(i: number): string;
  telemetry: string;
  events: string;
  /** Subscription filter for command requests. */
  cmdFilter: string;
  /** `<base>/cmd/` — strip it to get the command name. */
  cmdPrefix: string;
  /** Default response topic of command `name` (when the request has no MQTT 5 response topic). */
  response(name: string): string;
  stream(stream: string): string;
}

export function topicsFor(prefix: string, gatewayId: string): Topics {
  const base = `${prefix}/${gatewayId}`;
  return {
    base,
    state: `${base}/state`,
    inventory: `${base}/inventory`,
    inventoryPart: (i) => `${base}/inventory/${i}`,
    telemetry: `${base}/telemetry`,
    events: `${base}/events`,
    cmdFilter: `${base}/cmd/#`,
    cmdPrefix: `${base}/cmd/`,
    response: (name) => `${base}/res/${name}`,
    stream: (s) => `${base}/${s}`,
  };
}
