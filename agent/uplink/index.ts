export { backoffDelay, Connection } from "./connection.js";
export { Drainer } from "./drain.js";
export * from "./payloads.js";
export { topicsFor, type Topics } from "./topics.js";
export {
  Uplink,
  type CommandHandler,
  type CommandMessage,
  type UplinkIdentity,
  type UplinkStatus,
} from "./uplink.js";
