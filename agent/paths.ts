/** Default locations (fixed contract, see ARCHITECTURE.md). */
export const DEFAULT_CONFIG_PATH = "/etc/eclor-edge/config.yaml";
export const DEFAULT_STATE_DIR = "/var/lib/eclor-edge";
export const DEFAULT_CONTROL_SOCKET = "/run/eclor-edge/control.sock";
