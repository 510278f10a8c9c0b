import { CheckOperator, CheckSubject, type Check } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { fieldValue, type TemplateData } from "./templates";

/** What a condition reads: the card's fields, variables and tags. */
export type ConditionData = TemplateData & { tags: string[] };

function holds(check: Check, data: ConditionData): boolean {
  if (check.subject === CheckSubject.TAG) {
    const has = data.tags.some((t) => t.toLowerCase() === check.name.toLowerCase());
    return check.operator === CheckOperator.EQUALS || check.operator === CheckOperator.PRESENT || check.operator === CheckOperator.FILLED ? has : false;
  }
  const value = (check.subject === CheckSubject.FIELD ? fieldValue(data, check.name) : data.variables[check.name]) ?? "";
  switch (check.operator) {
    case CheckOperator.FILLED:
    case CheckOperator.PRESENT:
      return value.trim() !== "";
    case CheckOperator.EQUALS:
      return value === check.value;
    case CheckOperator.CONTAINS:
      return value.toLowerCase().includes(check.value.toLowerCase());
    default:
      return false;
  }
}

/** True when every check holds (each may be negated); an empty condition holds. */
export const conditionHolds = (checks: Check[], data: ConditionData) => checks.every((c) => holds(c, data) !== c.negate);
