// Type-aware lint: typescript-eslint needs the TypeScript JS API, which TypeScript 7 no longer
// ships, so the project pins TypeScript 5.9 for both tsc and the linter (see README, Development).
// Import cycles: `npm run lint:cycles` (dpdm, runtime imports only), run by `npm run lint`.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The layers of ../shared/ARCHITECTURE.md: each folder may import only those below it.
//   agent/cli → agent → drivers → core;  config → drivers (schemas), core;  sim encodes alone.
const layer = (files, patterns) => ({
  files,
  rules: { "no-restricted-imports": ["error", { patterns }] },
});
const forbid = (group, message) => ({ group, message });

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "**/*.js", "drivers/*/codecs/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/require-await": "off",
    },
  },
  layer(
    ["core/**/*.ts"],
    [
      forbid(
        ["**/agent/**", "**/drivers/**", "**/config/**", "**/sim/**"],
        "core/ imports nothing of the project.",
      ),
    ],
  ),
  layer(
    ["drivers/**/*.ts"],
    [
      forbid(
        ["**/agent/**", "**/sim/**", "**/config/schema.js", "**/config/load.js"],
        "drivers know nothing of the agent, the whole config or the simulators (ARCHITECTURE.md, layers).",
      ),
    ],
  ),
  layer(
    ["config/**/*.ts"],
    [
      forbid(
        ["**/agent/**", "**/sim/**"],
        "config/ may use drivers' schemas and core/, never agent/ (ARCHITECTURE.md, layers).",
      ),
    ],
  ),
  layer(
    ["agent/**/*.ts"],
    [forbid(["**/sim/**", "**/test/**"], "the agent never imports simulators or tests.")],
  ),
  layer(
    ["sim/**/*.ts"],
    [
      forbid(
        ["**/drivers/*/codec*.js", "**/drivers/*/frame.js", "**/drivers/*/pdu.js"],
        "simulators encode on their own, never with the drivers' codecs (a bug written twice is invisible).",
      ),
    ],
  ),
  {
    files: ["test/**/*.ts", "**/*.test.ts", "bench/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
);
