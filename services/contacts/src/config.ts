import { serviceBaseSchema } from "@chatcrm/config";

/** Environment of the contacts service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50052, database: "chatcrm_contacts" });

export type Config = ReturnType<typeof configSchema.parse>;
