import { describeServiceSkeleton, testLogger } from "@chatcrm/testing";
import { startExport } from "../../src/app";

describeServiceSkeleton("export", (config) => startExport(config, testLogger("export")), ["contacts.contact-events.v1"]);
