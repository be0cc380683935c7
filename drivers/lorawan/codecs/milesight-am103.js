/**
 * Milesight AM103 / AM103L (CO2, temperature, humidity) and EM500-CO2 — uplink and downlink codec,
 * TTN v3 / ChirpStack v4 interface. Written for eclor-edge from Milesight's public payload tables:
 *   https://github.com/Milesight-IoT/SensorDecoders (AM_Series/AM100_Series, EM_Series/EM500-CO2)
 * Uplinks (FPort 85) are a sequence of channel(1) | type(1) | data(N), little-endian:
 *   01 75 battery %            03 67 temperature int16/10 °C   04 68 humidity uint8/2 %RH
 *   05|07 7D CO2 uint16 ppm     06 73 pressure uint16/10 hPa     20 CE history (AM103: ts u32,
 *   temperature, humidity, co2 — 9 bytes)   FF xx device information (skipped, listed below).
 * Downlinks (FPort 85): report_interval (s) → FF 03 u16; reboot → FF 10 FF.
 */
var INFO_LENGTHS = { 0x01: 1, 0x09: 2, 0x0a: 2, 0x0b: 1, 0x0f: 1, 0x16: 8, 0xfe: 1, 0xff: 2 };

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
  var warnings = [];
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
    } else if ((ch === 0x05 || ch === 0x07) && type === 0x7d) {
      data.co2 = u16(b, i);
      i += 2;
    } else if (ch === 0x06 && type === 0x73) {
      data.pressure = u16(b, i) / 10;
      i += 2;
    } else if (ch === 0x20 && type === 0xce && i + 9 <= b.length) {
      data.history = data.history || [];
      data.history.push({ timestamp: u32(b, i), temperature: i16(b, i + 4) / 10, humidity: b[i + 6] / 2, co2: u16(b, i + 7) });
      i += 9;
    } else if (ch === 0xff && INFO_LENGTHS[type] !== undefined) {
      i += INFO_LENGTHS[type];
    } else {
      return { errors: ["unknown channel 0x" + ch.toString(16) + " type 0x" + type.toString(16) + " at byte " + (i - 2)], warnings: warnings };
    }
  }
  if (i > b.length) return { errors: ["payload truncated"], warnings: warnings };
  return { data: data, warnings: warnings };
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
