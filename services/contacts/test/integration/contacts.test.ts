import { describeServiceSkeleton } from "@chatcrm/testing";
import { startTestContacts } from "./harness";

describeServiceSkeleton("contacts", (config) => startTestContacts(config.MONGO_DATABASE), ["channels.inbound-messages.v1", "channels.delivery-statuses.v1", "contacts.resolved-messages.v1", "contacts.contact-events.v1", "flows.commands.v1", "flows.funnel-moves.v1"]);
