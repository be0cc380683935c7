/**
 * From frames to readings (README.md, "Readings"): the decrypted payload goes through the
 * device's codec and the fields named by its points become readings; a codec failure becomes a
 * `lorawan_codec_error` event and `codec_error` readings, never an exception; the link points
 * (RSSI, SNR of the best copy) and the concentrators' `stat` reports are readings too. The last
 * reading of each point is kept for `read()`.
 */
import type { DriverContext, Reading } from "../driver.js";
import type { CodecRegistry } from "./codecs.js";
import { GATEWAY_POINTS, gatewayDeviceId, pick, toValue, type DeviceRuntime } from "./devices.js";
import type { UplinkContext } from "./downlink.js";
import type { GatewayInfo } from "./gateways.js";
import type { NetContext } from "./network-context.js";
import type { GatewayStat } from "./semtech.js";

export class ReadingMaker {
  constructor(
    private readonly net: NetContext,
    private readonly codecs: CodecRegistry,
    private readonly emitReadings: DriverContext["emit"],
  ) {}

  /** RSSI and SNR of the uplink's best copy, when the device has `link_points`. */
  link(dev: DeviceRuntime, up: UplinkContext): Reading[] {
    const ts = up.receivedAt;
    return dev.cfg.link_points
      ? [
          { device: dev.id, point: "rssi", ts, value: up.rx.rssi, unit: "dBm", quality: "good" },
          { device: dev.id, point: "snr", ts, value: up.rx.lsnr, unit: "dB", quality: "good" },
        ]
      : [];
  }

  /** Decode `payload` with the device's codec and emit its readings followed by `link`. */
  async decode(
    dev: DeviceRuntime,
    payload: Buffer,
    fPort: number,
    ts: number,
    link: Reading[],
  ): Promise<void> {
    const { counters } = this.net;
    let r;
    try {
      r = await this.codecs
        .get(dev.codec)
        .decode({ bytes: payload, fPort, recvTime: new Date(ts) }, dev.id);
    } catch (e) {
      r = {
        ok: false as const,
        kind: "crashed" as const,
        error: (e as Error).message,
        warnings: [],
      };
    }
    if (!r.ok) {
      counters.codec_errors++;
      dev.errorCount++;
      dev.lastError = `codec ${dev.codec}: ${r.error}`;
      dev.lastErrorTs = ts;
      this.net.event(
        "lorawan_codec_error",
        "warning",
        `payload not decoded by codec ${dev.codec} (${r.kind}): ${r.error}`,
        dev.id,
        { codec: dev.codec, kind: r.kind, fPort, payload: payload.toString("hex") },
      );
      const bad: Reading[] = dev.points
        .filter((pt) => !pt.writable)
        .map((pt) => ({
          device: dev.id,
          point: pt.id,
          ts,
          value: null,
          ...(pt.unit ? { unit: pt.unit } : {}),
          quality: "codec_error" as const,
          detail: `${r.kind}: ${r.error}`,
        }));
      this.emit(dev, [...bad, ...link]);
      return;
    }
    counters.decoded++;
    if (r.warnings.length)
      this.net.log.info({ device: dev.id, warnings: r.warnings }, "codec warnings");
    const out: Reading[] = [];
    for (const pt of dev.points) {
      const raw = pick(r.value, pt.field ?? pt.id);
      if (raw === undefined) continue; // not in this frame (codecs send different fields per frame)
      const value = toValue(raw, pt);
      if (value === undefined) {
        out.push({
          device: dev.id,
          point: pt.id,
          ts,
          value: null,
          quality: "codec_error",
          detail: `field ${pt.field ?? pt.id} is not a number, boolean or string`,
        });
        continue;
      }
      out.push({
        device: dev.id,
        point: pt.id,
        ts,
        value,
        ...(pt.unit ? { unit: pt.unit } : {}),
        quality: "good",
      });
    }
    this.emit(dev, [...out, ...link]);
  }

  emit(dev: DeviceRuntime, readings: Reading[]): void {
    for (const r of readings) dev.last.set(r.point, r);
    if (readings.length) this.emitReadings(readings);
  }

  /** A concentrator's `stat` report as readings of device `gw-<EUI>`. */
  stat(gw: GatewayInfo, stat: GatewayStat, receivedAt: number): void {
    const device = gatewayDeviceId(gw.eui);
    const out: Reading[] = [];
    for (const p of GATEWAY_POINTS) {
      const v = (stat as Record<string, unknown>)[p.field];
      if (typeof v === "number" && Number.isFinite(v))
        out.push({
          device,
          point: p.id,
          ts: receivedAt,
          value: v,
          ...(p.unit ? { unit: p.unit } : {}),
          quality: "good",
        });
    }
    if (out.length) this.emitReadings(out);
  }
}
