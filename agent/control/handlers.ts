/**
 * The methods of the control API. Unary methods return their result; streaming methods push
 * `data` frames through the `Stream` they are handed and end it (or run until cancelled).
 * Validation here is about the request's shape and names (unknown device/point); write values
 * are validated by the command router alone (the only path to a device write).
 */
import { randomUUID } from "node:crypto";
import type { DeviceInfo, Value } from "../../drivers/driver.js";
import { EdgeError, ErrorCode } from "../../core/errors.js";
import { VERSION } from "../version.js";
import type { ControlBackend, StoredReading, TailItem } from "./backend.js";
import { PROTOCOL_VERSION, param } from "./protocol.js";

export interface Stream {
  /** Send one data frame; resolves when the socket can take more (backpressure). */
  send(data: unknown): Promise<void>;
  /** True while the client has not cancelled or hung up. */
  readonly open: boolean;
  /** Bytes queued on the socket; endless streams skip items while it is too large. */
  readonly queued: number;
  /** Called once when the client cancels or hangs up. */
  onClose(fn: () => void): void;
}

type Params = Record<string, unknown> | undefined;
/** The connection's peer, as the audit's who (peer.ts). */
export interface CallContext {
  who: `local:${string}`;
}
export type Unary = (backend: ControlBackend, p: Params, ctx: CallContext) => unknown;
/** Returns the final result of a finite stream, or never resolves for an endless one. */
export type Streaming = (backend: ControlBackend, p: Params, s: Stream) => Promise<unknown>;

export function findDevice(backend: ControlBackend, id: string): DeviceInfo {
  const inv = backend.inventory();
  const dev = inv.find((d) => d.id === id);
  if (!dev) {
    const known = inv.map((d) => d.id);
    throw new EdgeError(
      ErrorCode.DeviceUnknown,
      `unknown device "${id}"${known.length ? ` (known: ${known.join(", ")})` : " (no device is configured)"} — see \`eclor-edge devices\``,
      { device: id, known },
    );
  }
  return dev;
}

function checkPoints(dev: DeviceInfo, points: string[] | undefined): void {
  for (const p of points ?? []) {
    if (!dev.points.some((x) => x.id === p)) {
      throw new EdgeError(
        ErrorCode.PointUnknown,
        `device "${dev.id}" has no point "${p}" (points: ${dev.points.map((x) => x.id).join(", ")})`,
        { device: dev.id, point: p, known: dev.points.map((x) => x.id) },
      );
    }
  }
}

/**
 * Turn the CLI's text into the point's type, so "42" reaches the router as 42 and "on" as true.
 * Anything that does not convert is passed on unchanged for the router to refuse with its words.
 */
export function coerceValue(type: string | undefined, v: Value): Value {
  if (typeof v !== "string") return v;
  if (type === "number") {
    const n = Number(v);
    return v.trim() !== "" && Number.isFinite(n) ? n : v;
  }
  if (type === "boolean") {
    const t = v.toLowerCase();
    if (["true", "1", "on", "yes"].includes(t)) return true;
    if (["false", "0", "off", "no"].includes(t)) return false;
  }
  return v;
}

export const unary: Record<string, Unary> = {
  hello: (b) => ({
    protocol: PROTOCOL_VERSION,
    version: VERSION,
    pid: process.pid,
    methods: [...Object.keys(unary), ...Object.keys(streaming), "cancel"].sort(),
    devices: b.inventory().map((d) => d.id),
  }),
  status: (b) => b.status(),
  devices: async (b, p) => {
    const only = param.optString(p, "device");
    const inv = only ? [findDevice(b, only)] : b.inventory();
    const st = await b.status();
    const statuses = new Map(st.drivers.flatMap((d) => d.devices).map((x) => [x.id, x] as const));
    return {
      devices: inv.map((d) => ({
        ...d,
        status: statuses.get(d.id),
        values: b.latest(d.id),
      })),
    };
  },
  read: async (b, p) => {
    const dev = findDevice(b, param.string(p, "device"));
    const points = param.optStrings(p, "points");
    checkPoints(dev, points);
    return { device: dev.id, readings: await b.read(dev.id, points?.length ? points : undefined) };
  },
  write: async (b, p, ctx) => {
    // Unknown device or point: the command router refuses it and audits it, with who (14.6).
    const device = param.string(p, "device");
    const dev = b.inventory().find((d) => d.id === device);
    const point = param.string(p, "point");
    const raw = p?.value;
    if (typeof raw !== "number" && typeof raw !== "boolean" && typeof raw !== "string") {
      throw new EdgeError(
        ErrorCode.UsageError,
        "params.value: expected a number, boolean or string",
      );
    }
    const type = dev?.points.find((x) => x.id === point)?.type;
    const commandId = param.optString(p, "commandId") ?? `local-${randomUUID()}`;
    const confirmed = p?.confirmed === true;
    const value = coerceValue(type, raw);
    return {
      device,
      point,
      value,
      ...(await b.write({
        device,
        point,
        value,
        commandId,
        who: ctx.who,
        ...(confirmed ? { confirmed } : {}),
      })),
    };
  },
  "buffer.stats": (b) => b.bufferStats(),
  "buffer.purge": (b, p) => {
    const before = param.optNumber(p, "before");
    return b.bufferPurge(before !== undefined ? { before } : {});
  },
  buses: (b) => ({ buses: b.buses() }),
  // The command service's response as is ({id, ok, result | error}): `eclor-edge lighting`.
  command: (b, p) => {
    if (!b.command) throw new EdgeError(ErrorCode.CommandFailed, "this agent runs no commands");
    const body = p?.body;
    if (body === null || typeof body !== "object" || Array.isArray(body))
      throw new EdgeError(ErrorCode.UsageError, "params.body: expected an object");
    return b.command(param.string(p, "name"), body as Record<string, unknown>);
  },
};

/** Skip-and-count while a slow client's socket holds more than this (acquisition never waits). */
const TAIL_HIGH_WATER = 4 * 1024 * 1024;

export const streaming: Record<string, Streaming> = {
  tail: (b, p, s) => {
    const device = param.optString(p, "device");
    if (device) findDevice(b, device);
    const events = param.optBool(p, "events") ?? true;
    const readings = param.optBool(p, "readings") ?? true;
    let skipped = 0;
    return new Promise<never>(() => {
      const off = b.subscribe((item: TailItem) => {
        if (!s.open) return;
        if (item.kind === "reading" && (!readings || (device && item.reading.device !== device)))
          return;
        if (item.kind === "event" && (!events || (device && item.event.device !== device))) return;
        if (s.queued > TAIL_HIGH_WATER) {
          skipped++;
          return;
        }
        if (skipped > 0) {
          void s.send({ kind: "skipped", count: skipped });
          skipped = 0;
        }
        void s.send(item);
      });
      s.onClose(off);
    });
  },
  logs: async (b, p, s) => {
    const ring = b.logs;
    if (!ring)
      throw new EdgeError(ErrorCode.CommandFailed, "this agent keeps no log lines in memory");
    const lines = param.optNumber(p, "lines") ?? 100;
    const follow = param.optBool(p, "follow") ?? false;
    for (const e of ring.recent(lines)) await s.send(e);
    if (!follow) return { lines: Math.min(lines, ring.recent().length) };
    return new Promise<never>(() => {
      const off = ring.subscribe((e) => {
        if (s.open && s.queued < TAIL_HIGH_WATER) void s.send(e);
      });
      s.onClose(off);
    });
  },
  "buffer.export": async (b, p, s) => {
    const q = {
      from: param.optNumber(p, "from"),
      to: param.optNumber(p, "to"),
      device: param.optString(p, "device"),
      point: param.optString(p, "point"),
      unsent: param.optBool(p, "unsent"),
    };
    if (q.device) findDevice(b, q.device);
    const query = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined));
    let count = 0;
    let chunk: StoredReading[] = [];
    for (const r of b.bufferExport(query)) {
      if (!s.open) return { count, cancelled: true };
      chunk.push(r);
      count++;
      if (chunk.length >= 500) {
        await s.send(chunk);
        chunk = [];
      }
    }
    if (chunk.length) await s.send(chunk);
    return { count };
  },
};
