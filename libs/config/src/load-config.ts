import type { z } from "zod";

/** A configuration that failed validation; the message names every bad variable and is written for a person. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

type Env = Record<string, string | undefined>;

/**
 * Validates the environment against a schema whose keys are variable names. Unknown variables are ignored,
 * so the whole process environment can be passed in.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: Env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "(environment)");
    const value = env[name];
    const got = value === undefined ? "it is not set" : `got ${JSON.stringify(redact(name, value))}`;
    return `${name}: ${issue.message} (${got})`;
  });
  throw new ConfigError(problems);
}

/** Secrets are never echoed back, even in an error. */
function redact(name: string, value: string): string {
  return /SECRET|PASSWORD|TOKEN|KEY/i.test(name) ? "***" : value;
}

/**
 * Loads the configuration or ends the process: a service must not start half-configured. Prints the problems
 * to stderr and exits with status 78 (EX_CONFIG).
 */
export function loadConfigOrExit<S extends z.ZodType>(schema: S, env: Env): z.infer<S> {
  try {
    return loadConfig(schema, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
}
