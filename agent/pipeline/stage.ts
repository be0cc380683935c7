/**
 * The pipeline is a sequence of small stages between the drivers and the store. Each stage takes
 * a batch of readings and returns the ones that go on (possibly changed). Later stages (privacy
 * policy, local rules) plug in by implementing `Stage` and being added in agent.ts.
 */
import type { Reading } from "../../drivers/driver.js";

export interface StageContext {
  /** An explicit read (command `read`, CLI): report-by-exception must let it through. */
  bypassDeadband: boolean;
}

export interface Stage {
  readonly name: string;
  process(readings: readonly Reading[], ctx: StageContext): readonly Reading[];
}
