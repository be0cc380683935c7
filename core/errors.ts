/**
 * One error class with stable codes in bands (model: zwave-js ZWaveError). The code is part of
 * the message (`EE0101 …`) so a technician can search the docs for it, and part of the MQTT
 * error responses so the hypervisor can branch on it.
 *
 * Bands: 01xx config · 02xx store · 03xx uplink · 04xx drivers/devices · 05xx commands ·
 *        06xx CLI/control API · 07xx provisioning · 08xx simulators.
 */
export const ErrorCode = {
  // 01xx configuration
  ConfigInvalid: 101,
  ConfigUnreadable: 102,
  ConfigReference: 103,
  // 02xx store
  StoreUnavailable: 201,
  StoreCorrupt: 202,
  StoreFull: 203,
  // 03xx uplink
  UplinkConnect: 301,
  UplinkTls: 302,
  UplinkAuth: 303,
  UplinkPacketTooLarge: 304,
  // 04xx drivers and devices
  DriverConfig: 401,
  DriverStart: 402,
  DeviceTimeout: 403,
  DeviceException: 404,
  DeviceFrame: 405,
  DeviceUnknown: 406,
  PointUnknown: 407,
  PortUnavailable: 408,
  ProtocolViolation: 409,
  CodecFailed: 410,
  // 05xx commands
  CommandUnknown: 501,
  CommandInvalid: 502,
  CommandRefused: 503,
  CommandTimeout: 504,
  CommandRateLimited: 505,
  CommandFailed: 506,
  CommandSignature: 507,
  /** Too many commands of this kind in flight (issue 14.3): retry later. */
  CommandBusy: 508,
  // 06xx CLI and control API
  UsageError: 601,
  AgentNotRunning: 602,
  ControlPermission: 603,
  BusOwnedByAgent: 604,
  // 07xx provisioning
  ProvisionBundle: 701,
  ProvisionEnrol: 702,
  ProvisionCertificate: 703,
  // 08xx simulators
  SimulatorConfig: 801,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

const names = new Map<number, ErrorCodeName>(
  (Object.entries(ErrorCode) as [ErrorCodeName, number][]).map(([k, v]) => [v, k]),
);

/** `EE0101` for code 101. */
export function formatCode(code: number): string {
  return `EE${String(code).padStart(4, "0")}`;
}

export class EdgeError extends Error {
  override readonly name = "EdgeError";
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
    /** Extra machine-readable context (paths, device ids…), never secrets. */
    readonly details?: Readonly<Record<string, unknown>>,
    options?: { cause?: unknown },
  ) {
    super(`${formatCode(code)} ${message}`, options);
  }

  /** The message without the code prefix. */
  get text(): string {
    return this.message.slice(formatCode(this.code).length + 1);
  }

  get codeName(): ErrorCodeName {
    return names.get(this.code) ?? "CommandFailed";
  }

  /** Exit code for the CLI: 2 for bad input, 1 for runtime failures. */
  get exitCode(): 1 | 2 {
    return isBadInput(this.code) ? 2 : 1;
  }
}

const badInputCodes = new Set<number>([
  ErrorCode.ConfigInvalid,
  ErrorCode.ConfigUnreadable,
  ErrorCode.ConfigReference,
  ErrorCode.DriverConfig,
  ErrorCode.DeviceUnknown,
  ErrorCode.PointUnknown,
  ErrorCode.CommandUnknown,
  ErrorCode.CommandInvalid,
  ErrorCode.CommandRefused,
  ErrorCode.UsageError,
  ErrorCode.ProvisionBundle,
  ErrorCode.SimulatorConfig,
]);

export function isBadInput(code: number): boolean {
  return badInputCodes.has(code);
}

export function isEdgeError(e: unknown): e is EdgeError {
  return e instanceof EdgeError;
}

export function isEdgeErrorWithCode(e: unknown, code: ErrorCodeValue): e is EdgeError {
  return e instanceof EdgeError && e.code === code;
}

/** A readable one-line description of any thrown value. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
