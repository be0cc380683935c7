/**
 * Readings from drivers → stages → sink (the store). Synchronous and non-blocking: `ingest` only
 * runs the stages and appends to the store's group-commit buffer, so acquisition never waits on
 * the disk or the uplink (ARCHITECTURE.md invariant 3).
 */
import type { Logger } from "pino";
import type { Reading } from "../../drivers/driver.js";
import { ReportByException, type RbeRule } from "./rbe.js";
import { sanitizeStage } from "./sanitize.js";
import type { Stage, StageContext } from "./stage.js";

/** The context of every polled batch; shared, so a batch allocates no context object. */
const POLLED: StageContext = Object.freeze({ bypassDeadband: false });

export type Sink = (readings: readonly Reading[]) => void;

export class Pipeline {
  private readonly stages: Stage[];
  private readonly rules: Map<string, RbeRule>;
  private readonly rbe: ReportByException;
  counters = { in: 0, out: 0, filtered: 0 };

  constructor(
    rules: ReadonlyMap<string, RbeRule>,
    private readonly sink: Sink,
    private readonly logger: Logger,
    extraStages: readonly Stage[] = [],
  ) {
    this.rules = new Map(rules);
    this.rbe = new ReportByException(this.rules);
    this.stages = [sanitizeStage, ...extraStages, this.rbe];
  }

  /** Add or replace report-by-exception rules (e.g. points from a device profile). */
  addRules(rules: ReadonlyMap<string, RbeRule>): void {
    for (const [k, v] of rules) this.rules.set(k, v);
    this.rbe.rulesChanged();
  }

  /** Never throws: a failing stage is logged and the readings go on unfiltered. */
  ingest(readings: readonly Reading[], ctx: StageContext = POLLED): void {
    this.counters.in += readings.length;
    let batch = readings;
    for (const stage of this.stages) {
      try {
        batch = stage.process(batch, ctx);
      } catch (err) {
        // Losing readings because a filter crashed would be worse than forwarding too many.
        this.logger.error(
          { err, stage: stage.name },
          `pipeline stage ${stage.name} failed; readings passed through`,
        );
      }
      if (batch.length === 0) break;
    }
    this.counters.out += batch.length;
    this.counters.filtered += readings.length - batch.length;
    if (batch.length > 0) this.sink(batch);
  }
}
