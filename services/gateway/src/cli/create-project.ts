import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";
import { bool, ConfigError, loadConfig, mongoUrl } from "@chatcrm/config";
import { RpcError } from "@chatcrm/grpc";
import type { Logger } from "@chatcrm/logging";
import { MongoDatabase } from "@chatcrm/mongo";
import { identityModels } from "../data/identity-models";
import { createProject } from "../usecases/create-project";
import { normaliseEmail } from "../usecases/login";

const USAGE = `usage: node main.js create-project --name <project name> --admin-email <email> [--admin-name <name>]
       [--admin-password-file <file>] [--if-absent]

Creates a project and its first admin in the gateway's database (MONGO_URL, MONGO_DATABASE).
The password is read from --admin-password-file, or from the ADMIN_PASSWORD environment variable; without
either, a strong one is generated and printed once. With --if-absent, an admin email that already signs in
somewhere is left alone (exit 0), so a start script can run it every time.`;

const envSchema = z.object({ MONGO_URL: mongoUrl(), MONGO_DATABASE: z.string().min(1).default("chatcrm_gateway"), MONGO_QUERY_INDEXES: bool(true) });

/** The first-run command; returns the process exit status. */
export async function runCreateProject(argv: string[], env: NodeJS.ProcessEnv, logger: Logger, out = process.stdout): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        name: { type: "string" },
        "admin-email": { type: "string" },
        "admin-name": { type: "string", default: "" },
        "admin-password-file": { type: "string" },
        "if-absent": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help || !args.name || !args["admin-email"]) {
    console.error(USAGE);
    return args.help ? 0 : 2;
  }
  let settings;
  try {
    settings = loadConfig(envSchema, env);
  } catch (err) {
    if (err instanceof ConfigError) console.error(err.message);
    return 78;
  }
  const fromFile = args["admin-password-file"] ? readFileSync(args["admin-password-file"], "utf8").replace(/\r?\n$/, "") : undefined;
  const given = fromFile ?? env.ADMIN_PASSWORD;
  const password = given || randomBytes(18).toString("base64url");

  const mongo = new MongoDatabase({ url: settings.MONGO_URL, database: settings.MONGO_DATABASE, logger, queryIndexes: settings.MONGO_QUERY_INDEXES });
  try {
    await mongo.connect();
    const models = identityModels(mongo.connection);
    await mongo.syncIndexes(Object.values(models));
    if (args["if-absent"] && (await models.operators.exists({ email: normaliseEmail(args["admin-email"]) }))) {
      out.write(`${args["admin-email"]} already signs in to a project; nothing created.\n`);
      return 0;
    }
    const { project, admin } = await createProject(models, { name: args.name, adminEmail: args["admin-email"], adminName: args["admin-name"], adminPassword: password });
    out.write(
      [
        `Project "${project.name}" created: ${project._id}`,
        `Admin: ${admin.email}`,
        ...(given ? [] : [`Password (shown once, store it now): ${password}`]),
        "",
      ].join("\n"),
    );
    return 0;
  } catch (err) {
    if (!(err instanceof RpcError)) throw err;
    console.error(`cannot create the project: ${err.message}`);
    return 1;
  } finally {
    await mongo.close();
  }
}
