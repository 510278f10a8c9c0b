import { parseUtm } from "./utm";

describe("parseUtm", () => {
  it.each([
    ["a query string", "utm_source=vk&utm_medium=cpc&utm_campaign=spring", { source: "vk", medium: "cpc", campaign: "spring" }],
    ["a query string with ? and short keys", "?source=ig&term=shoes", { source: "ig", term: "shoes" }],
    ["the Telegram-safe form", "utm_source-vk__utm_campaign-black-friday", { source: "vk", campaign: "black-friday" }],
    ["a plain payload, taken as the source", "landing42", { source: "landing42" }],
  ] as [string, string, Partial<Record<string, string>>][])("reads %s", (_name, payload, expected) => {
    expect(parseUtm(payload)).toEqual({ source: "", medium: "", campaign: "", content: "", term: "", ...expected });
  });

  it("returns null for an empty payload and caps long values", () => {
    expect(parseUtm("  ")).toBeNull();
    expect(parseUtm(`utm_source=${"x".repeat(500)}`)?.source).toHaveLength(200);
  });
});
