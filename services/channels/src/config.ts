import { serviceBaseSchema } from "@chatcrm/config";

/** Environment of the channels service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50051, database: "chatcrm_channels" });

export type Config = ReturnType<typeof configSchema.parse>;
