import { serviceBaseSchema } from "@chatcrm/config";

/** Environment of the flow-runtime service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50053, database: "chatcrm_flow_runtime" });

export type Config = ReturnType<typeof configSchema.parse>;
