/**
 * Reads the Dockerfile the way Docker does (dockerfile-ast, the parser behind the VS Code Docker
 * language service), for the lint test and for the install test that runs the build stage's
 * install step verbatim.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DockerfileParser, From, type Instruction } from "dockerfile-ast";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const dockerfilePath = join(repoRoot, "Dockerfile");

export function readDockerfile(): string {
  return readFileSync(dockerfilePath, "utf8");
}

export interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

/** The build stages, each with its instructions (FROM included), in file order. */
export function stages(content = readDockerfile()): Stage[] {
  const out: Stage[] = [];
  for (const i of DockerfileParser.parse(content).getInstructions()) {
    if (i instanceof From)
      out.push({ from: i.getImageName() ?? "", name: i.getBuildStage(), instructions: [] });
    out.at(-1)?.instructions.push(i);
  }
  return out;
}

/**
 * The RUN instruction that follows the `# packaging-test:` marker in the build stage, with the
 * stage's ENV values in effect at that point (e.g. PREFIX). The install test runs exactly this.
 */
export function buildStageInstallStep(content = readDockerfile()): {
  command: string;
  env: Record<string, string>;
} {
  const lines = content.split("\n");
  const marker = lines.findIndex((l) => /^#\s*packaging-test:/.test(l));
  if (marker < 0)
    throw new Error("Dockerfile: no '# packaging-test:' marker before the install RUN");
  const df = DockerfileParser.parse(content);
  const run = df
    .getInstructions()
    .find((i) => i.getKeyword() === "RUN" && i.getRange().start.line > marker);
  if (!run) throw new Error("Dockerfile: no RUN after the '# packaging-test:' marker");
  const env: Record<string, string> = {};
  for (const e of df.getENVs()) {
    if (e.getRange().start.line > marker) continue;
    for (const p of e.getProperties()) env[p.getName()] = p.getValue() ?? "";
  }
  return { command: run.getArgumentsContent() ?? "", env };
}
