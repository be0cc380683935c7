/**
 * The counting subscriber of the drain benchmark: counts records (occurrences of `{"seq":`) in
 * every message of a topic without parsing JSON, so the counter is the same cheap observer for
 * the agent's drain and for the raw mqtt.js reference.
 */
import mqtt, { type MqttClient } from "mqtt";

const NEEDLE = Buffer.from('{"seq":');

export function countRecords(payload: Buffer): number {
  let n = 0;
  let i = payload.indexOf(NEEDLE);
  while (i >= 0) {
    n++;
    i = payload.indexOf(NEEDLE, i + NEEDLE.length);
  }
  return n;
}

export class Counter {
  count = 0;
  private waiters: { target: number; resolve: (t: number) => void }[] = [];
  private constructor(private readonly client: MqttClient) {}

  static async start(url: string, topic: string): Promise<Counter> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      clientId: `bench-counter-${process.pid}-${topic.length}`,
    });
    const c = new Counter(client);
    client.on("message", (_t, payload) => {
      c.count += countRecords(payload);
      c.waiters = c.waiters.filter((w) =>
        c.count >= w.target ? (w.resolve(performance.now()), false) : true,
      );
    });
    await client.subscribeAsync(topic, { qos: 1 });
    return c;
  }

  /** Resolves with performance.now() when `target` records were counted. */
  until(target: number, timeoutMs = 60_000): Promise<number> {
    if (this.count >= target) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`counted ${this.count} of ${target} records in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        target,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      });
    });
  }

  async stop(): Promise<void> {
    await this.client.endAsync();
  }
}
