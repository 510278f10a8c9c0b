import { describeServiceSkeleton, serviceTestConfig, testLogger } from "@chatcrm/testing";
import { startFlowRuntime } from "../../src/app";
import { configSchema } from "../../src/config";

describeServiceSkeleton(
  "flow-runtime",
  (base) => startFlowRuntime(serviceTestConfig(configSchema, base), testLogger("flow-runtime")),
  ["contacts.resolved-messages.v1", "flows.commands.v1", "flows.timers.v1", "channels.send-commands.v1", "integrations.requests.v1", "integrations.results.v1", "flows.funnel-moves.v1"],
);
