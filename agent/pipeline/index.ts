export { Pipeline, type Sink } from "./pipeline.js";
export { ReportByException, parseDeadband, rulesFromConfig, type RbeRule } from "./rbe.js";
export { sanitizeStage } from "./sanitize.js";
export type { Stage, StageContext } from "./stage.js";
