import { serviceBaseSchema } from "@chatcrm/config";

/** Environment of the export service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50056, database: "chatcrm_export" });

export type Config = ReturnType<typeof configSchema.parse>;
