import { describeServiceSkeleton, testLogger } from "@chatcrm/testing";
import { startIntegrations } from "../../src/app";

describeServiceSkeleton("integrations", (config) => startIntegrations(config, testLogger("integrations")), []);
