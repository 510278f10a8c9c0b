import { describeServiceSkeleton, testLogger } from "@chatcrm/testing";
import { startContacts } from "../../src/app";

describeServiceSkeleton("contacts", (config) => startContacts(config, testLogger("contacts")), ["channels.inbound-messages.v1", "channels.delivery-statuses.v1", "contacts.resolved-messages.v1", "contacts.contact-events.v1", "flows.commands.v1"]);
