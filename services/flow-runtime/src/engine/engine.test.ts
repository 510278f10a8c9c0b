import { create } from "@bufbuild/protobuf";
import { ButtonSchema, InboundMessageSchema, MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactSnapshotSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { AnswerKind } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { checkAnswer } from "./answers";
import { render, templateProblems } from "./templates";
import { wildcardMatch } from "./wildcard";

const msg = (text: string, extra = {}) => create(InboundMessageSchema, { text, kind: MessageKind.TEXT, ...extra });
const check = (expect: AnswerKind, text: string, extra = {}) => checkAnswer(expect, msg(text, extra), { region: "RU", buttons: [create(ButtonSchema, { text: "Yes", payload: "y" }), create(ButtonSchema, { text: "No", payload: "n" })] });

describe("answer checks (seeds 000, 004)", () => {
  test.each([
    ["8 (916) 123-45-67", "+79161234567"],
    ["+7 916 123 45 67", "+79161234567"],
    ["+44 20 7946 0958", "+442079460958"],
  ])("phone %s → %s", (text, e164) => expect(check(AnswerKind.PHONE, text)).toEqual({ valid: true, value: e164 }));
  test.each(["tomorrow", "12345", "+7 916", "8-800-PHONE"])("not a phone: %s", (text) => expect(check(AnswerKind.PHONE, text).valid).toBe(false));
  test("a shared contact card counts as the phone", () => expect(check(AnswerKind.PHONE, "", { sharedPhone: "79161234567" })).toEqual({ valid: true, value: "+79161234567" }));
  test("a shared contact card with a + counts as the phone", () => expect(check(AnswerKind.PHONE, "", { sharedPhone: "+79161234567" })).toEqual({ valid: true, value: "+79161234567" }));
  test("emails are checked and lower-cased", () => {
    expect(check(AnswerKind.EMAIL, " Ivan@Example.COM ")).toEqual({ valid: true, value: "ivan@example.com" });
    expect(check(AnswerKind.EMAIL, "ivan@").valid).toBe(false);
  });
  test("numbers accept a comma and spaces", () => {
    expect(check(AnswerKind.NUMBER, "1 234,5")).toEqual({ valid: true, value: "1234.5" });
    expect(check(AnswerKind.NUMBER, "12a").valid).toBe(false);
  });
  test("dates must exist on the calendar", () => {
    expect(check(AnswerKind.DATE, "31.12.2026")).toEqual({ valid: true, value: "2026-12-31" });
    expect(check(AnswerKind.DATE, "2026-02-29").valid).toBe(false);
    expect(check(AnswerKind.DATE, "31/02/2026").valid).toBe(false);
  });
  test("buttons: pressed or typed", () => {
    expect(check(AnswerKind.BUTTON, "", { buttonPayload: "n" })).toEqual({ valid: true, value: "No", button: "n" });
    expect(check(AnswerKind.BUTTON, " yes ")).toEqual({ valid: true, value: "Yes", button: "y" });
    expect(check(AnswerKind.BUTTON, "maybe").valid).toBe(false);
  });
  test("media answers need an attachment of that kind", () => {
    const photo = { attachments: [{ kind: MessageKind.IMAGE, url: "https://files/p.jpg" }] };
    expect(check(AnswerKind.IMAGE, "", photo)).toEqual({ valid: true, value: "https://files/p.jpg" });
    expect(check(AnswerKind.VIDEO, "", photo).valid).toBe(false);
    expect(check(AnswerKind.TEXT, "").valid).toBe(false);
  });
});

describe("templates", () => {
  const data = create(ContactSnapshotSchema, { firstName: "Ivan", clientId: 42n, variables: { "my var": "x", empty: "" } });
  test("fields, variables with spaces, fallbacks; never a raw placeholder", () => {
    expect(render("Hi {{first_name}} #{{client_id}} {{my var}} {{ missing | friend }} {{empty|none}} {{nothing}}!", data)).toBe("Hi Ivan #42 x friend none !");
    expect(render("{{client.first_name}}", data)).toBe("Ivan");
  });
  test("URL values are encoded", () => expect(render("https://x/{{q}}", create(ContactSnapshotSchema, { variables: { q: "a b&c" } }), encodeURIComponent)).toBe("https://x/a%20b%26c"));
  test("problems: unknown client fields and unclosed placeholders", () => {
    expect(templateProblems("{{client.shoe}}")[0]).toContain('unknown subscriber field "shoe"');
    expect(templateProblems("Hi {{first_name")).toHaveLength(1);
    expect(templateProblems("{{anything goes|ok}}")).toEqual([]);
  });
});

describe("wildcard patterns", () => {
  test.each([
    ["price*", "Price of the course", true],
    ["*курс*", "Какой КУРС лучше?", true],
    ["h?llo", "hello", true],
    ["h?llo", "hllo", false],
    ["*a*a*a*a*a*b", "a".repeat(5000), false],
  ])("%s ~ %s = %s", (pattern, text, expected) => expect(wildcardMatch(pattern, text)).toBe(expected));
});
