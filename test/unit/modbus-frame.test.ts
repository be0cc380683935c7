/**
 * The driver's own Modbus framing (frame.ts): requests byte for byte against the Eastron worked
 * frames (drivers/modbus/testcases) and the MBAP layout, and every check of an answer.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ModbusError } from "../../drivers/modbus/errors.js";
import {
  answerPduLength,
  checkAnswer,
  crc16,
  type Op,
  rtuRequest,
  tcpRequest,
} from "../../drivers/modbus/frame.js";

const md = readFileSync(
  new URL("../../drivers/modbus/testcases/eastron-sdm630.md", import.meta.url),
  "utf8",
);
const hex = (re: RegExp) => Buffer.from(md.match(re)![1]!.replace(/ /g, ""), "hex");
const goldenRequest = hex(/request `([0-9A-F ]+)`/);
const goldenAnswer = hex(/a 230\.0 V answer is `([0-9A-F ]+)`/);

const read: Op = { fc: 4, unit: 1, address: 0, count: 2 };
const pdu = (...b: number[]) => Buffer.from(b);
function refused(op: Op, answer: Buffer): string {
  try {
    checkAnswer(op, answer, 0, answer.length);
  } catch (e) {
    expect(e).toBeInstanceOf(ModbusError);
    return `${(e as ModbusError).quality}: ${(e as ModbusError).message}`;
  }
  throw new Error("accepted");
}

describe("modbus frames", () => {
  it("builds the worked RTU request and checks the worked answer's CRC", () => {
    expect(rtuRequest(read).toString("hex")).toBe(goldenRequest.toString("hex"));
    const n = goldenAnswer.length;
    expect(crc16(goldenAnswer, 0, n - 2)).toBe(goldenAnswer.readUInt16LE(n - 2));
    expect(answerPduLength(4, goldenAnswer, 1, n)).toBe(n - 3);
    expect(checkAnswer(read, goldenAnswer, 1, n - 2)).toEqual({ registers: [0x4366, 0x0000] });
  });

  it("builds MBAP requests (transaction id, protocol 0, length, unit) for every function", () => {
    expect(tcpRequest(0x1234, { fc: 3, unit: 9, address: 0x10, count: 3 }).toString("hex")).toBe(
      "123400000006090300100003",
    );
    expect(tcpRequest(1, { fc: 5, unit: 1, address: 3, value: true }).toString("hex")).toBe(
      "00010000000601050003ff00",
    );
    expect(
      tcpRequest(2, {
        fc: 15,
        unit: 1,
        address: 0,
        values: [true, false, true, true, false, false, false, false, true],
      }).toString("hex"),
    ).toBe("000200000009010f0000000902" + "0d01");
    expect(
      tcpRequest(3, { fc: 16, unit: 1, address: 10, values: [0x41ac, 0] }).toString("hex"),
    ).toBe("00030000000b0110000a00020441ac0000");
  });

  it("refuses an answer whole, saying why", () => {
    expect(refused(read, pdu(4, 2, 0, 1))).toBe(
      "frame_error: answer byte count 2 for 2 registers, expected 4",
    );
    expect(refused(read, pdu(4, 250, 0, 1, 0, 2))).toBe(
      "frame_error: answer byte count 250 for 2 registers, expected 4",
    );
    expect(refused(read, pdu(4, 4, 0, 1, 0, 2, 9))).toBe(
      "frame_error: answer of 5 data bytes, byte count 4",
    );
    expect(refused(read, pdu(3, 4, 0, 1, 0, 2))).toBe(
      "frame_error: answer with function code 0x03 to a request with 0x04",
    );
    expect(refused(read, pdu(0x84, 6))).toBe("exception: server device busy (exception 6)");
    expect(refused({ fc: 6, unit: 1, address: 7, value: 5 }, pdu(6, 0, 7, 0, 6))).toBe(
      "frame_error: write answer echoes 7/6, expected 7/5",
    );
    expect(refused({ fc: 1, unit: 1, address: 0, count: 9 }, pdu(1, 1, 0xff))).toBe(
      "frame_error: answer byte count 1 for 9 bits, expected 2",
    );
  });

  it("decodes bits LSB first, only as many as asked", () => {
    expect(checkAnswer({ fc: 2, unit: 1, address: 0, count: 3 }, pdu(2, 1, 0b101), 0, 3)).toEqual({
      bits: [true, false, true],
    });
  });
});
