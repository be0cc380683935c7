/**
 * Milesight VS350 passage people counter — uplink and downlink codec, TTN v3 / ChirpStack v4
 * interface. Written for eclor-edge from Milesight's public payload table:
 *   https://github.com/Milesight-IoT/SensorDecoders (VS_Series/VS350/README.md)
 * Uplinks (FPort 85), channel(1) | type(1) | data(N), little-endian:
 *   01 75 battery %   03 67 temperature int16/10 °C   04 CC total in/out u16+u16
 *   05 CC period in/out u16+u16   83 67 temperature + alarm   84 CC total + alarm
 *   85 CC period + alarm   20 CE history: ts u32, kind u8, period in/out [, total in/out]
 * Downlinks (FPort 85): report_interval (s) → FF 03 u16; reboot → FF 10 FF.
 */
var INFO_LENGTHS = { 0x01: 1, 0x09: 2, 0x0a: 2, 0x0b: 1, 0x0f: 1, 0x16: 8, 0xfe: 1, 0xff: 2 };
var TEMP_ALARMS = { 0: "threshold alarm release", 1: "threshold alarm", 3: "high temperature alarm", 4: "high temperature alarm release" };

function u16(b, i) {
  return b[i] | (b[i + 1] << 8);
}
function i16(b, i) {
  var v = u16(b, i);
  return v > 0x7fff ? v - 0x10000 : v;
}
function u32(b, i) {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16)) + b[i + 3] * 0x1000000;
}

function decodeUplink(input) {
  var b = input.bytes;
  var data = {};
  var i = 0;
  while (i + 1 < b.length) {
    var ch = b[i];
    var type = b[i + 1];
    i += 2;
    if (ch === 0x01 && type === 0x75) {
      data.battery = b[i];
      i += 1;
    } else if ((ch === 0x03 || ch === 0x83) && type === 0x67) {
      data.temperature = i16(b, i) / 10;
      i += 2;
      if (ch === 0x83) {
        data.temperature_alarm = TEMP_ALARMS[b[i]] || "unknown";
        i += 1;
      }
    } else if ((ch === 0x04 || ch === 0x84) && type === 0xcc) {
      data.total_in = u16(b, i);
      data.total_out = u16(b, i + 2);
      i += 4;
      if (ch === 0x84) {
        data.total_count_alarm = b[i] === 1 ? "threshold alarm" : "unknown";
        i += 1;
      }
    } else if ((ch === 0x05 || ch === 0x85) && type === 0xcc) {
      data.period_in = u16(b, i);
      data.period_out = u16(b, i + 2);
      i += 4;
      if (ch === 0x85) {
        data.period_count_alarm = b[i] === 1 ? "threshold alarm" : "unknown";
        i += 1;
      }
    } else if (ch === 0x20 && type === 0xce) {
      var rec = { timestamp: u32(b, i), period_in: u16(b, i + 5), period_out: u16(b, i + 7) };
      var kind = b[i + 4];
      i += 9;
      if (kind === 1) {
        rec.total_in = u16(b, i);
        rec.total_out = u16(b, i + 2);
        i += 4;
      }
      data.history = data.history || [];
      data.history.push(rec);
    } else if (ch === 0xff && INFO_LENGTHS[type] !== undefined) {
      i += INFO_LENGTHS[type];
    } else {
      return { errors: ["unknown channel 0x" + ch.toString(16) + " type 0x" + type.toString(16) + " at byte " + (i - 2)] };
    }
  }
  if (i > b.length) return { errors: ["payload truncated"] };
  return { data: data };
}

function encodeDownlink(input) {
  var d = input.data;
  if (d.report_interval !== undefined) {
    var s = Number(d.report_interval);
    if (!(s >= 60 && s <= 64800) || Math.floor(s) !== s) return { errors: ["report_interval must be an integer 60..64800 s"] };
    return { fPort: 85, bytes: [0xff, 0x03, s & 0xff, (s >> 8) & 0xff] };
  }
  if (d.reboot !== undefined) return { fPort: 85, bytes: [0xff, 0x10, 0xff] };
  return { errors: ["nothing to encode: expected report_interval or reboot"] };
}
