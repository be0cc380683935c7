/**
 * Milesight EM300-DI pulse counter on a water meter's pulse (reed/hall) output — uplink and
 * downlink codec, TTN v3 / ChirpStack v4 interface. Written for eclor-edge from Milesight's public
 * payload table: https://github.com/Milesight-IoT/SensorDecoders (em-series/em300-di/README.md)
 * Uplinks (FPort 85), channel(1) | type(1) | data(N), little-endian:
 *   01 75 battery %   03 67 temperature int16/10 °C   04 68 humidity uint8/2 %RH
 *   05 00 gpio (0 low, 1 high)   05 C8 pulse count u32
 *   05 E1 water: water_conv u16/10, pulse_conv u16/10, water float32 (volume in the unit set on
 *         the device; eclor-edge profiles use m3)   85 E1 the same + water_alarm u8
 *   20 CE history: ts u32, temperature, humidity, kind (1 gpio, 2 pulse), gpio u8, pulse u32
 * Downlinks (FPort 85): report_interval (s) → FF 03 u16; reboot → FF 10 FF.
 */
var INFO_LENGTHS = { 0x01: 1, 0x09: 2, 0x0a: 2, 0x0b: 1, 0x0f: 1, 0x16: 8, 0xfe: 1, 0xff: 2 };
var WATER_ALARMS = { 1: "water outage timeout alarm", 2: "water outage timeout alarm release", 3: "water flow timeout alarm", 4: "water flow timeout alarm release" };

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
function f32(b, i) {
  var bits = u32(b, i);
  var sign = bits >= 0x80000000 ? -1 : 1;
  var exp = (bits >>> 23) & 0xff;
  var frac = bits & 0x7fffff;
  if (exp === 0xff) return frac ? NaN : sign * Infinity;
  if (exp === 0) return sign * frac * Math.pow(2, -149);
  return sign * (1 + frac / 0x800000) * Math.pow(2, exp - 127);
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
    } else if (ch === 0x03 && type === 0x67) {
      data.temperature = i16(b, i) / 10;
      i += 2;
    } else if (ch === 0x04 && type === 0x68) {
      data.humidity = b[i] / 2;
      i += 1;
    } else if (ch === 0x05 && type === 0x00) {
      data.gpio = b[i] ? "high" : "low";
      i += 1;
    } else if (ch === 0x05 && type === 0xc8) {
      data.pulse = u32(b, i);
      i += 4;
    } else if ((ch === 0x05 || ch === 0x85) && type === 0xe1) {
      data.water_conv = u16(b, i) / 10;
      data.pulse_conv = u16(b, i + 2) / 10;
      // float32 → keep the 7 significant digits the meter actually sends
      data.water = Number(f32(b, i + 4).toPrecision(7));
      i += 8;
      if (ch === 0x85) {
        data.water_alarm = WATER_ALARMS[b[i]] || "unknown";
        i += 1;
      }
    } else if (ch === 0x20 && type === 0xce) {
      if (b.length - i < 13) return { errors: ["history record truncated"] };
      var rec = { timestamp: u32(b, i), temperature: i16(b, i + 4) / 10, humidity: b[i + 6] / 2 };
      if (b[i + 7] === 1) rec.gpio = b[i + 8] ? "high" : "low";
      else if (b[i + 7] === 2) rec.pulse = u32(b, i + 9);
      data.history = data.history || [];
      data.history.push(rec);
      i += 13;
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
