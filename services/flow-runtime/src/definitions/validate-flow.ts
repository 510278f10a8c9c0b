import { AnswerField } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import {
  AnswerKind,
  CheckOperator,
  CheckSubject,
  DelayUnit,
  EdgePort,
  HttpMethod,
  TimeoutBehavior,
  TriggerKind,
  type ActionBlock,
  type Block,
  type FlowDefinition,
  type MessageBlock,
} from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { templateProblems } from "../engine/templates";
import { delayMs } from "./flow-shape";

export interface Problem {
  field: string;
  blockId: string;
  message: string;
}

const BLOCK_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Contacts refuses variable names with control characters; a flow that would send one is refused up front. */
const badVariableName = (name: string) => name.length > 100 || [...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch === "\u007f");
const MAX_BLOCKS = 500;
const MAX_DELAY_MS = 366 * 24 * 3600_000;
/** Integration actions wait for a result and leave by SUCCESS / FAILURE. */
export const isIntegrationAction = (a: ActionBlock | undefined) => a?.action.case === "amoContact" || a?.action.case === "amoDeal" || a?.action.case === "httpRequest";

/** Which ports a block may leave by. */
function allowedPorts(block: Block): EdgePort[] {
  switch (block.kind.case) {
    case "question":
      return [EdgePort.NEXT, EdgePort.TIMEOUT, EdgePort.INVALID, EdgePort.BUTTON];
    case "condition":
      return [EdgePort.YES, EdgePort.NO];
    case "action":
      return isIntegrationAction(block.kind.value) ? [EdgePort.SUCCESS, EdgePort.FAILURE] : [EdgePort.NEXT];
    default:
      return [EdgePort.NEXT];
  }
}

/** Every problem of a definition, in a stable order; empty when it may be stored. */
export function validateFlow(def: FlowDefinition): Problem[] {
  const problems: Problem[] = [];
  const add = (field: string, message: string, blockId = "") => problems.push({ field, blockId, message });
  const templates = (field: string, blockId: string, text: string) => templateProblems(text).forEach((m) => add(field, `the text ${m}`, blockId));
  const message = (path: string, blockId: string, m: MessageBlock | undefined, required: boolean) => {
    if (!m) return required ? add(path, "is required", blockId) : undefined;
    if (required && !m.text.trim() && m.media.length === 0) add(`${path}.text`, "a message needs text or media", blockId);
    templates(`${path}.text`, blockId, m.text);
    m.buttons.forEach((b, i) => {
      if (!b.text.trim()) add(`${path}.buttons[${i}].text`, "a button needs text", blockId);
      templates(`${path}.buttons[${i}].text`, blockId, b.text);
    });
    m.media.forEach((a, i) => !/^https?:\/\//.test(a.url) && add(`${path}.media[${i}].url`, "expected an http(s) URL", blockId));
  };

  if (!def.name.trim()) add("name", "a flow needs a name");
  if (def.name.length > 200) add("name", "at most 200 characters");
  if (def.defaultRegion && !/^[A-Z]{2}$/.test(def.defaultRegion)) add("default_region", "expected a two-letter country code such as RU");
  if (def.blocks.length === 0) add("blocks", "a flow needs at least one block");
  if (def.blocks.length > MAX_BLOCKS) add("blocks", `at most ${MAX_BLOCKS} blocks`);

  const byId = new Map<string, Block>();
  def.blocks.forEach((b, i) => {
    const path = `blocks[${i}]`;
    if (!BLOCK_ID.test(b.blockId)) add(`${path}.block_id`, "expected 1–64 letters, digits, _ or -", b.blockId);
    else if (byId.has(b.blockId)) add(`${path}.block_id`, `the id "${b.blockId}" is used twice`, b.blockId);
    else byId.set(b.blockId, b);
    validateBlock(b, path);
  });
  if (!def.entryBlockId) add("entry_block_id", "is required");
  else if (!byId.has(def.entryBlockId)) add("entry_block_id", `names the block "${def.entryBlockId}", which does not exist`);

  const out = new Map<string, string[]>();
  def.edges.forEach((e, i) => {
    const path = `edges[${i}]`;
    const from = byId.get(e.fromBlockId);
    if (!from) add(`${path}.from_block_id`, `names the block "${e.fromBlockId}", which does not exist`);
    if (!byId.has(e.toBlockId)) add(`${path}.to_block_id`, `names the block "${e.toBlockId}", which does not exist`, e.fromBlockId);
    if (from && !allowedPorts(from).includes(e.port)) add(`${path}.port`, `a ${from.kind.case ?? "block"} block cannot leave by ${EdgePort[e.port] ?? e.port}`, e.fromBlockId);
    if (e.port === EdgePort.BUTTON && !e.buttonPayload) add(`${path}.button_payload`, "a button edge names the button's payload", e.fromBlockId);
    if (from && byId.has(e.toBlockId)) out.set(e.fromBlockId, [...(out.get(e.fromBlockId) ?? []), e.toBlockId]);
  });
  def.blocks.forEach((b, i) => {
    const q = b.kind.case === "question" ? b.kind.value : undefined;
    if (q && q.timeoutSeconds > 0n && q.onTimeout === TimeoutBehavior.BRANCH && !def.edges.some((e) => e.fromBlockId === b.blockId && e.port === EdgePort.TIMEOUT)) {
      add(`blocks[${i}].question.on_timeout`, "the question takes a timeout branch but no TIMEOUT edge leaves it", b.blockId);
    }
  });

  if (byId.has(def.entryBlockId)) {
    const reached = new Set([def.entryBlockId]);
    const queue = [def.entryBlockId];
    while (queue.length) {
      for (const next of out.get(queue.shift()!) ?? []) {
        if (reached.has(next)) continue;
        reached.add(next);
        queue.push(next);
      }
    }
    def.blocks.forEach((b, i) => byId.get(b.blockId) === b && !reached.has(b.blockId) && add(`blocks[${i}]`, `no edge from the entry block reaches "${b.blockId}"`, b.blockId));
  }

  def.triggers.forEach((t, i) => {
    if (!t.kind) add(`triggers[${i}].kind`, "is required");
    if ((t.kind === TriggerKind.KEYWORD || t.kind === TriggerKind.PATTERN) && !t.values.some((v) => v.trim())) add(`triggers[${i}].values`, "a keyword or pattern trigger needs at least one value");
  });
  return problems;

  function validateBlock(b: Block, path: string) {
    const id = b.blockId;
    switch (b.kind.case) {
      case "message":
        return message(`${path}.message`, id, b.kind.value, true);
      case "question": {
        const q = b.kind.value;
        const p = `${path}.question`;
        message(`${p}.prompt`, id, q.prompt, true);
        if (!q.expect) add(`${p}.expect`, "say which answer the question waits for", id);
        if (q.expect === AnswerKind.BUTTON && !q.prompt?.buttons.length) add(`${p}.prompt.buttons`, "a question expecting a button needs buttons", id);
        if (!q.retryUnlimited && (q.retries < 1 || q.retries > 5)) add(`${p}.retries`, "re-ask 1 to 5 times, or set retry_unlimited", id);
        templates(`${p}.error_text`, id, q.errorText);
        if (q.timeoutSeconds < 0n) add(`${p}.timeout_seconds`, "cannot be negative", id);
        if (q.timeoutSeconds > 0n && !q.onTimeout) add(`${p}.on_timeout`, "a reply timeout needs a behaviour: stop silently, stop with a message, or branch", id);
        if (q.onTimeout === TimeoutBehavior.STOP_WITH_MESSAGE && !q.timeoutText.trim()) add(`${p}.timeout_text`, "stopping with a message needs the message", id);
        templates(`${p}.timeout_text`, id, q.timeoutText);
        if (badVariableName(q.saveToVariable)) add(`${p}.save_to_variable`, "at most 100 characters, no control characters", id);
        if (q.saveToField === AnswerField.PHONE && q.expect !== AnswerKind.PHONE) add(`${p}.save_to_field`, "only a phone answer can be saved to the phone field", id);
        if (q.saveToField === AnswerField.EMAIL && q.expect !== AnswerKind.EMAIL) add(`${p}.save_to_field`, "only an email answer can be saved to the email field", id);
        return;
      }
      case "condition":
        if (!b.kind.value.checks.length) add(`${path}.condition.checks`, "a condition needs at least one check", id);
        return b.kind.value.checks.forEach((c, i) => {
          if (!c.subject) add(`${path}.condition.checks[${i}].subject`, "is required", id);
          if (!c.name.trim()) add(`${path}.condition.checks[${i}].name`, "is required", id);
          if (!c.operator) add(`${path}.condition.checks[${i}].operator`, "is required", id);
          if (c.subject === CheckSubject.TAG && c.operator !== CheckOperator.PRESENT && c.operator !== CheckOperator.EQUALS) add(`${path}.condition.checks[${i}].operator`, "a tag check is PRESENT", id);
        });
      case "delay": {
        const d = b.kind.value;
        if (!d.unit || !DelayUnit[d.unit]) add(`${path}.delay.unit`, "is required", id);
        else if (d.amount <= 0n || delayMs(d) > MAX_DELAY_MS) add(`${path}.delay.amount`, "wait more than nothing and at most a year", id);
        return;
      }
      case "action":
        return validateAction(b.kind.value, `${path}.action`, id);
      default:
        return add(path, "a block needs a kind: message, question, condition, delay or action", id);
    }
  }

  function validateAction(a: ActionBlock, p: string, id: string) {
    const need = (ok: boolean, field: string, what: string) => !ok && add(`${p}.${field}`, what, id);
    const v = a.action;
    switch (v.case) {
      case "startFlow":
        return need(!!v.value.flowId, "start_flow.flow_id", "name the flow to start");
      case "stopFlow":
        return;
      case "tags":
      case "lists":
        return need(v.value.add.length + v.value.remove.length > 0, v.case, "add or remove at least one");
      case "setVariable":
        need(!!v.value.name.trim() && !badVariableName(v.value.name), "set_variable.name", "1–100 characters, no control characters");
        return templates(`${p}.set_variable.value`, id, v.value.value);
      case "setField":
        need(!!v.value.field, "set_field.field", "is required");
        return templates(`${p}.set_field.value`, id, v.value.value);
      case "markUnread":
        return;
      case "mentionOperator":
        need(!!v.value.operatorId, "mention_operator.operator_id", "is required");
        need(!!v.value.comment.trim(), "mention_operator.comment", "is required");
        return templates(`${p}.mention_operator.comment`, id, v.value.comment);
      case "assignOperator":
        return;
      case "salesPlan":
        return need(!!v.value.plan.trim(), "sales_plan.plan", "is required");
      case "email":
        need(!!v.value.channelId, "email.channel_id", "name the email channel");
        need(!!v.value.text.trim(), "email.text", "is required");
        templates(`${p}.email.subject`, id, v.value.subject);
        return templates(`${p}.email.text`, id, v.value.text);
      case "amoContact":
        return need(!!v.value.integrationId, "amo_contact.integration_id", "is required");
      case "amoDeal":
        need(!!v.value.integrationId, "amo_deal.integration_id", "is required");
        need(!!v.value.pipelineId, "amo_deal.pipeline_id", "is required");
        need(!!v.value.stageId, "amo_deal.stage_id", "is required");
        return templates(`${p}.amo_deal.deal_name`, id, v.value.dealName);
      case "httpRequest": {
        const h = v.value;
        need(!!h.method && !!HttpMethod[h.method], "http_request.method", "GET, POST or PUT");
        need(/^(https?:\/\/|\{\{)/.test(h.url.trim()), "http_request.url", "expected an http(s) URL");
        templates(`${p}.http_request.url`, id, h.url);
        templates(`${p}.http_request.body`, id, h.body);
        h.headers.forEach((x, i) => {
          need(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(x.name), `http_request.headers[${i}].name`, "not a valid header name");
          templates(`${p}.http_request.headers[${i}].value`, id, x.value);
        });
        h.query.forEach((x, i) => {
          need(!!x.name, `http_request.query[${i}].name`, "is required");
          templates(`${p}.http_request.query[${i}].value`, id, x.value);
        });
        h.responseMapping.forEach((m, i) => need(!!m.path && !!m.variable.trim(), `http_request.response_mapping[${i}]`, "needs a path and a variable"));
        return;
      }
      default:
        return add(p, "an action block needs an action", id);
    }
  }
}
