import tseslint from "typescript-eslint";

/**
 * The protocol/ modules that import no zod, not even through a sibling: the only ones the browser SDK may import.
 * A new protocol module stays refused to the SDK until it is checked and listed here.
 */
const ZOD_FREE_PROTOCOL = ["backoff", "codes", "hmac", "json", "limits", "snowflake", "sse", "token-bucket"];

const NO_ZOD_IN_SDK =
  "the browser SDK must not pull in zod: use the hand-written validators in client/validate.ts " +
  `(from protocol/ it may import only the zod-free modules listed in eslint.config.js: ${ZOD_FREE_PROTOCOL.join(", ")})`;
const NO_ZOD_IN_ZOD_FREE =
  "this protocol module is zod-free so that the browser SDK can import it: keep zod and the modules that import it out";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "client/dist/", "gateway-node/dist/", ".wrangler/", "worker-edge/worker-configuration.d.ts", "e2e/screenshots/", "examples/*/dist/"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  {
    files: ["client/**/*.ts", "client/**/*.tsx"],
    ignores: ["client/test/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          // The directory itself is its index.ts, which imports every module (a pattern for it would also shut
          // out the negations below: gitignore cannot re-include a file inside an excluded directory).
          paths: ["zod", "../protocol", "../protocol/"].map((name) => ({ name, message: NO_ZOD_IN_SDK })),
          patterns: [
            { group: ["zod/*"], message: NO_ZOD_IN_SDK },
            { group: ["**/protocol/*", ...ZOD_FREE_PROTOCOL.map((name) => `!**/protocol/${name}.js`)], message: NO_ZOD_IN_SDK },
          ],
        },
      ],
    },
  },
  {
    files: ZOD_FREE_PROTOCOL.map((name) => `protocol/${name}.ts`),
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: [{ name: "zod", message: NO_ZOD_IN_ZOD_FREE }],
          patterns: [
            { group: ["zod/*"], message: NO_ZOD_IN_ZOD_FREE },
            { group: ["./*", ...ZOD_FREE_PROTOCOL.map((name) => `!./${name}.js`)], message: NO_ZOD_IN_ZOD_FREE },
          ],
        },
      ],
    },
  },
);
