import { serviceBaseSchema } from "@chatcrm/config";

/** Environment of the integrations service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50055, database: "chatcrm_integrations" });

export type Config = ReturnType<typeof configSchema.parse>;
