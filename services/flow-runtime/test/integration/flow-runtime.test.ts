import { describeServiceSkeleton, testLogger } from "@chatcrm/testing";
import { startFlowRuntime } from "../../src/app";

describeServiceSkeleton("flow-runtime", (config) => startFlowRuntime(config, testLogger("flow-runtime")), ["contacts.resolved-messages.v1", "flows.commands.v1", "channels.send-commands.v1"]);
