/**
 * The publish gate: every message the gateway publishes (telemetry batches, state, inventory,
 * command responses, replay) is measured against the broker's Maximum Packet Size (MQTT 5
 * §3.2.2.3.6, from the CONNACK) before it is handed to mqtt.js, which checks only incoming
 * packets. A broker receiving a packet over its limit closes the connection (§3.1.2.11.4 / 4.13)
 * — without the gate, one oversized inventory made the agent reconnect in a loop and publish
 * nothing (issue 15 item 4).
 */
import { EdgeError, ErrorCode } from "../../core/errors.js";

/**
 * Bytes of a QoS 1 PUBLISH besides topic and payload: fixed header (1) + remaining length (≤ 4)
 * + topic length (2) + packet id (2) + property length (≤ 4) + slack for broker-added
 * properties we do not send; correlation data adds 3 + its length.
 */
export const PUBLISH_OVERHEAD = 16;

export class PublishGate {
  /** The broker's limit for the current connection (Infinity when it announced none). */
  maxPacket = Infinity;
  /** The last message refused by the gate (shown as the uplink's last_error). */
  lastRefusal?: EdgeError;

  /** Bytes of the packet that would carry `payload` on `topic`. */
  static packetSize(topic: string, payload: string | Buffer, correlation?: Buffer): number {
    return (
      Buffer.byteLength(topic) +
      (typeof payload === "string" ? Buffer.byteLength(payload) : payload.length) +
      PUBLISH_OVERHEAD +
      (correlation ? 3 + correlation.length : 0)
    );
  }

  fits(topic: string, payload: string | Buffer, correlation?: Buffer): boolean {
    if (this.maxPacket === Infinity) return true;
    // UTF-8 is at most 3 bytes per UTF-16 unit: skip the exact count when it cannot matter.
    if ((topic.length + payload.length) * 3 + PUBLISH_OVERHEAD + 64 < this.maxPacket) return true;
    return PublishGate.packetSize(topic, payload, correlation) <= this.maxPacket;
  }

  /** The largest payload (bytes) that fits on `topic`. */
  room(topic: string, correlation?: Buffer): number {
    return (
      this.maxPacket -
      Buffer.byteLength(topic) -
      PUBLISH_OVERHEAD -
      (correlation ? 3 + correlation.length : 0)
    );
  }

  /** Record (and return) why a message was not published. */
  refuse(topic: string, payload: string | Buffer, what: string): EdgeError {
    const size = PublishGate.packetSize(topic, payload);
    this.lastRefusal = new EdgeError(
      ErrorCode.UplinkPacketTooLarge,
      `${what} on ${topic} is ${size} bytes, over the broker's maximum packet size (${this.maxPacket} bytes): not published — raise the broker's max_packet_size`,
      { topic, size, maxPacketSize: this.maxPacket },
    );
    return this.lastRefusal;
  }
}
