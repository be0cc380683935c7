/**
 * The serial port helper shared by the TIC and M-Bus drivers: reopen with exponential backoff
 * (fake timers, fake transport) and plain-words state. The real-pty behaviour (unplug, replug) is
 * in test/integration/tic-serial.test.ts and mbus-serial.test.ts.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { type RawSerial, ReconnectingPort, type SerialFactory } from "../../drivers/serial/port.js";

const opts = {
  path: "/dev/ttyTEST",
  baudRate: 1200,
  dataBits: 7 as const,
  parity: "even" as const,
  stopBits: 1 as const,
};

/** A transport that fails while `present` is false, and can be "unplugged". */
function fakeLine() {
  const line = {
    present: false,
    attempts: [] as number[],
    close: undefined as ((e?: Error) => void) | undefined,
    data: undefined as ((c: Buffer) => void) | undefined,
    written: [] as Buffer[],
  };
  const factory: SerialFactory = async () => {
    line.attempts.push(Date.now());
    if (!line.present) throw new Error("No such file or directory, cannot open /dev/ttyTEST");
    const raw: RawSerial = {
      write: async (b) => void line.written.push(b),
      close: async () => undefined,
      onData: (cb) => (line.data = cb),
      onClose: (cb) => (line.close = cb),
    };
    return raw;
  };
  return { line, factory };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("ReconnectingPort", () => {
  it("retries a missing port with doubling delays (±20 % jitter) up to the cap", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.5); // no jitter: exact doubling
    const { line, factory } = fakeLine();
    const states: string[] = [];
    const port = new ReconnectingPort(opts, {
      factory,
      minDelayMs: 100,
      maxDelayMs: 1000,
      onData: () => undefined,
      onState: (s, d) => states.push(`${s}: ${d}`),
    });
    port.start();
    await vi.advanceTimersByTimeAsync(5000);
    const gaps = line.attempts.slice(1).map((t, i) => t - line.attempts[i]!);
    expect(gaps.slice(0, 6)).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(port.isOpen).toBe(false);
    expect(port.detail).toMatch(
      /^cannot open \/dev\/ttyTEST: .*No such file.*; retrying in 1\.0 s$/,
    );
    line.present = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(port.isOpen).toBe(true);
    expect(states.at(-1)).toBe("open: port /dev/ttyTEST open at 1200 7E1");
    await port.stop();
    vi.restoreAllMocks();
  });

  it("a lost port starts again from the shortest delay, and data flows after reopening", async () => {
    vi.useFakeTimers();
    const { line, factory } = fakeLine();
    line.present = true;
    const got: string[] = [];
    const port = new ReconnectingPort(opts, {
      factory,
      minDelayMs: 100,
      maxDelayMs: 1000,
      onData: (c) => got.push(c.toString()),
    });
    port.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(port.isOpen).toBe(true);
    line.present = false;
    line.close!(new Error("bad file descriptor"));
    expect(port.detail).toMatch(
      /^port \/dev\/ttyTEST lost \(bad file descriptor\); retrying in 0\.\d s$/,
    );
    await expect(port.write(Buffer.from("x"))).rejects.toThrow(
      /EE0408 serial port \/dev\/ttyTEST is not open/,
    );
    await vi.advanceTimersByTimeAsync(2000);
    line.present = true;
    await vi.advanceTimersByTimeAsync(2000);
    expect(port.isOpen).toBe(true);
    line.data!(Buffer.from("hello"));
    expect(got).toEqual(["hello"]);
    expect([port.openCount, port.lostCount]).toEqual([2, 1]);
    await port.write(Buffer.from("ok"));
    expect(line.written.map(String)).toEqual(["ok"]);
    await port.stop();
    expect(port.detail).toBe("port /dev/ttyTEST closed");
  });

  it("after a run of failed opens, a successful open resets the backoff: the next loss retries at the shortest delay", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.5); // no jitter
    const { line, factory } = fakeLine();
    const port = new ReconnectingPort(opts, {
      factory,
      minDelayMs: 100,
      maxDelayMs: 1000,
      onData: () => undefined,
    });
    port.start();
    await vi.advanceTimersByTimeAsync(5000); // 100, 200, 400, 800, 1000, 1000 …: at the cap
    expect(port.detail).toMatch(/retrying in 1\.0 s$/);
    line.present = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(port.isOpen).toBe(true);
    line.present = false;
    line.close!(new Error("unplugged"));
    // Without the reset this would wait the capped 1.0 s again.
    expect(port.detail).toMatch(/lost \(unplugged\); retrying in 0\.1 s$/);
    const before = line.attempts.length;
    await vi.advanceTimersByTimeAsync(100);
    expect(line.attempts.length).toBe(before + 1);
    await port.stop();
  });

  it("reconfigure (TIC speed switch) starts a failing port's backoff from the shortest delay", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { factory } = fakeLine();
    const port = new ReconnectingPort(opts, {
      factory,
      minDelayMs: 100,
      maxDelayMs: 1000,
      onData: () => undefined,
    });
    port.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(port.detail).toMatch(/retrying in 1\.0 s$/);
    await port.reconfigure({ baudRate: 9600 });
    await vi.advanceTimersByTimeAsync(0);
    expect(port.detail).toMatch(/cannot open .*; retrying in 0\.1 s$/);
    expect(port.options.baudRate).toBe(9600);
    await port.stop();
  });

  it("whenOpen waits for the port and gives up after its timeout", async () => {
    vi.useFakeTimers();
    const { line, factory } = fakeLine();
    const port = new ReconnectingPort(opts, {
      factory,
      minDelayMs: 100,
      maxDelayMs: 100,
      onData: () => undefined,
    });
    port.start();
    const never = port.whenOpen(250);
    await vi.advanceTimersByTimeAsync(300);
    await expect(never).resolves.toBe(false);
    const soon = port.whenOpen(1000);
    line.present = true;
    await vi.advanceTimersByTimeAsync(200);
    await expect(soon).resolves.toBe(true);
    await port.stop();
  });
});
