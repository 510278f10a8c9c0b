import js from "@eslint/js";
import nx from "@nx/eslint-plugin";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "libs/contracts/src/gen/**", ".nx/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    plugins: { "@nx": nx },
    rules: {
      // Services never import each other; they talk over gRPC and Kafka. Libs never import services.
      "@nx/enforce-module-boundaries": [
        "error",
        {
          enforceBuildableLibDependency: false,
          allow: ["@chatcrm/contracts/*"],
          depConstraints: [
            { sourceTag: "type:service", onlyDependOnLibsWithTags: ["type:lib"] },
            { sourceTag: "type:lib", onlyDependOnLibsWithTags: ["type:lib"] },
            { sourceTag: "type:test", onlyDependOnLibsWithTags: ["type:lib", "type:service"] },
          ],
        },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Library code must take its configuration as arguments; only a service's config.ts reads the environment.
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Read the environment only in a service's main.ts or instrument.ts and pass values down." },
      ],
    },
  },
  {
    files: ["services/*/src/main.ts", "services/*/src/instrument.ts", "**/*.test.ts", "test/**/*.ts", "libs/testing/src/**/*.ts", "tools/**"],
    rules: { "no-restricted-properties": "off" },
  },
  {
    files: ["**/*.js", "**/*.mjs", "**/*.cjs"],
    languageOptions: { globals: { require: "readonly", module: "writable", __dirname: "readonly", process: "readonly", console: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
