/**
 * No Docker engine runs here, so the image is checked in two halves: this file lints the
 * Dockerfile (dockerfile-utils, the validator of the VS Code Docker language service, every rule
 * at error level) and checks the image's contract (multi-stage, non-root, init, volumes,
 * healthcheck); packaging-install.test.ts runs the build stage's install step verbatim.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { validate, ValidationSeverity, type ValidatorSettings } from "dockerfile-utils";
import { describe, expect, it } from "vitest";
import { buildStageInstallStep, readDockerfile, repoRoot, stages } from "./packaging-dockerfile.js";

const strict: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

function lint(content: string): string[] {
  return validate(content, strict).map(
    (d) =>
      `line ${d.range.start.line + 1}: ${typeof d.message === "string" ? d.message : d.message.value}`,
  );
}

const args = (i: { getArgumentsContent(): string | null }) => i.getArgumentsContent() ?? "";

describe("Dockerfile", () => {
  it("passes the linter with every rule as an error", () => {
    expect(lint(readDockerfile())).toEqual([]);
  });

  it("the linter does catch mistakes (unknown flag, relative WORKDIR, two CMDs)", () => {
    const bad = readDockerfile()
      .replace("HEALTHCHECK --interval=30s", "HEALTHCHECK --intervall=30s")
      .replace("WORKDIR /var/lib/eclor-edge", "WORKDIR var/lib/eclor-edge")
      .concat('\nCMD ["run"]\n');
    const problems = lint(bad).join("\n");
    expect(problems).toMatch(/Unknown flag: intervall/);
    expect(problems).toMatch(/WORKDIR paths should be absolute/);
    expect(problems).toMatch(/only be one CMD/);
  });

  it("is multi-stage: compilers and dev dependencies stay in the build stage", () => {
    const [build, runtime, ...more] = stages();
    expect(more).toEqual([]);
    expect(build!.name).toBe("build");
    expect(build!.from).toBe(runtime!.from); // same Node and libc for the native modules
    const runtimeRuns = runtime!.instructions.filter((i) => i.getKeyword() === "RUN").map(args);
    expect(runtimeRuns.join("\n")).not.toMatch(/\bnpm\b|g\+\+|libsystemd-dev|node-gyp/);
    const copies = runtime!.instructions
      .filter((i) => i.getKeyword() === "COPY")
      .map((i) => i.getTextContent());
    expect(copies).toContain("COPY --from=build /opt/eclor-edge /usr/lib/eclor-edge");
    // The build stage's install step is the shared recipe (run verbatim by the install test).
    expect(buildStageInstallStep().command).toMatch(/^bash scripts\/pack-install\.sh "\$PREFIX"/);
  });

  it("runs as a non-root user under tini, with state and config volumes and a healthcheck", () => {
    const runtime = stages().at(-1)!.instructions;
    const last = (kw: string) => args(runtime.filter((i) => i.getKeyword() === kw).at(-1)!);
    expect(last("USER")).toBe("eclor-edge");
    expect(last("ENTRYPOINT")).toBe('["/usr/bin/tini", "--", "eclor-edge"]');
    expect(last("CMD")).toBe('["run", "--config", "/etc/eclor-edge/config.yaml"]');
    expect(last("VOLUME")).toBe('["/var/lib/eclor-edge", "/etc/eclor-edge"]');
    expect(last("HEALTHCHECK")).toMatch(/CMD \["eclor-edge", "status", "--json"\]$/);
  });

  it(".dockerignore keeps local builds and dependencies out of the context", () => {
    const ignored = readFileSync(join(repoRoot, ".dockerignore"), "utf8").split("\n");
    for (const p of ["node_modules", "dist", ".git"]) expect(ignored).toContain(p);
  });
});
