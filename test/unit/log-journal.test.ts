/**
 * Log priorities for journald: `<N>` sd-daemon prefixes only when fd 1 is the journal stream
 * (JOURNAL_STREAM = its device:inode). The real journal is checked by packaging-install.test.ts
 * (`journalctl -u eclor-edge -p err` in a booted Debian 13).
 */
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { journalPriorities, stdoutIsJournal, syslogPriority } from "../../agent/log.js";

const dir = mkdtempSync(join(tmpdir(), "eclor-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("journald priorities", () => {
  it("maps pino levels to syslog priorities", () => {
    expect([10, 20, 30, 40, 50, 60].map(syslogPriority)).toEqual([7, 7, 6, 4, 3, 2]);
  });

  it("recognises the journal stream by device and inode, nothing else", () => {
    const fd = openSync(join(dir, "out"), "w");
    const st = fstatSync(fd, { bigint: true });
    expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd)).toBe(true);
    expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }, fd)).toBe(false);
    expect(stdoutIsJournal({}, fd)).toBe(false);
    closeSync(fd);
  });

  it("prefixes every pino line with its priority", () => {
    const lines: string[] = [];
    const log = pino({ level: "debug" }, journalPriorities({ write: (s) => void lines.push(s) }));
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error({ err: new Error("boom") }, "e");
    expect(lines.map((l) => l.slice(0, 3))).toEqual(["<7>", "<6>", "<4>", "<3>"]);
    expect(JSON.parse(lines[3]!.slice(3))).toMatchObject({ level: 50, msg: "e" });
  });
});
