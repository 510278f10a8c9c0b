import { describeServiceSkeleton, testLogger } from "@chatcrm/testing";
import { startIdentityMerge } from "../../src/app";

describeServiceSkeleton("identity-merge", (config) => startIdentityMerge(config, testLogger("identity-merge")), ["contacts.contact-events.v1"]);
