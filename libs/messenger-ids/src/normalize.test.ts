import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { messengerFromName, messengerName, normalizeMessengerId } from "./index";

describe("normalizeMessengerId", () => {
  it.each([
    [Messenger.WHATSAPP, "+7 (916) 123-45-67", {}, "79161234567"],
    [Messenger.WHATSAPP, "79161234567", {}, "79161234567"],
    [Messenger.WHATSAPP, "8 916 123-45-67", { defaultRegion: "RU" }, "79161234567"],
    [Messenger.EMAIL, " Anna@Example.COM ", {}, "anna@example.com"],
    [Messenger.TELEGRAM, "-100123", {}, "-100123"],
    [Messenger.VK, "42", {}, "42"],
  ])("normalises %s %p", (messenger, raw, options, expected) => {
    expect(normalizeMessengerId(messenger, raw, options)).toBe(expected);
  });

  it.each([
    [Messenger.WHATSAPP, "12345"],
    [Messenger.WHATSAPP, "8 916 123-45-67"],
    [Messenger.EMAIL, "anna@"],
    [Messenger.TELEGRAM, "@anna"],
    [Messenger.VK, "-5"],
    [Messenger.UNSPECIFIED, "1"],
  ])("refuses %s %p with a reason", (messenger, raw) => {
    expect(normalizeMessengerId(messenger, raw)).toEqual({ problem: expect.any(String) });
  });
});

describe("messenger names", () => {
  it("round-trips every messenger through its stored name", () => {
    for (const m of [Messenger.TELEGRAM, Messenger.WHATSAPP, Messenger.VK, Messenger.EMAIL, Messenger.WEB, Messenger.INSTAGRAM]) {
      expect(messengerFromName(messengerName(m)!)).toBe(m);
    }
    expect(messengerName(Messenger.UNSPECIFIED)).toBeUndefined();
    expect(messengerFromName("")).toBe(Messenger.UNSPECIFIED);
    expect(messengerFromName("icq")).toBe(Messenger.UNSPECIFIED);
  });
});
