/** The Modbus simulator: used by `eclor-edge sim modbus`, the demo, the tests and the bench. */
export { ModbusSimulator, parseFault, faultKinds, type Fault } from "./server.js";
export { RegisterBank, crc16, handlePdu, type SimUnit, type UnitBehaviour } from "./pdu.js";
export {
  addSimDevice,
  counting,
  dali,
  sdm630,
  simDeviceKinds,
  type SimDeviceKind,
} from "./devices.js";
