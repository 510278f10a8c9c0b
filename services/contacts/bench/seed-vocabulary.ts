import type { seededRandom } from "@chatcrm/testing";
import type { ContactDoc } from "../src/store/contact-document";

// The vocabulary of the benchmarks' synthetic cards (contacts' and the gateway's seed the same kind of base).

export const TAGS = Array.from({ length: 20 }, (_, i) => `tag-${String(i).padStart(2, "0")}`);
export const LISTS = ["newsletter", "vip", "webinar-2026", "leads", "partners"];
export const FIRST = ["Anna", "Boris", "Carla", "Dmitry", "Elena", "Farid", "Galina", "Hugo", "Irina", "Jamal", "Ksenia", "Leo", "Maria", "Nikita", "Olga", "Pavel"];
export const LAST = ["Ivanova", "Smith", "Petrov", "Garcia", "Kuznetsov", "Müller", "Rossi", "Sokolova", "Tanaka", "Novak", ""];
export const CITIES = ["Moscow", "Berlin", "Almaty", "Tbilisi", "Yerevan", "Minsk", "Riga", "Warsaw", "Istanbul", "Dubai", "Kazan", "Novosibirsk"];
export const PLANS = ["free", "basic", "pro", "enterprise"];
export const DAY = 86_400_000;

/** The 20 variables of a contact: names with spaces and dots as users make them; "plan" and "segment" drive the filters. */
export function variablesFor(r: ReturnType<typeof seededRandom>, i: number, cities: readonly string[] = CITIES): ContactDoc["variables"] {
  return [
    { name: "plan", value: r.pick(PLANS) },
    { name: "segment", value: `s${r.int(5)}` },
    { name: "city", value: r.pick(cities) },
    { name: "age", value: String(18 + r.int(50)) },
    { name: "order.total", value: (r.next() * 500).toFixed(2) },
    { name: "order.count", value: String(r.int(30)) },
    { name: "favourite color", value: r.pick(["red", "green", "blue", "black", "white"]) },
    { name: "utm source", value: r.pick(["google", "yandex", "vk_ads", "instagram", "direct"]) },
    { name: "promo code", value: `PROMO${r.int(1000)}` },
    { name: "birthday", value: `19${60 + r.int(40)}-${String(1 + r.int(12)).padStart(2, "0")}-${String(1 + r.int(28)).padStart(2, "0")}` },
    { name: "company", value: `Company ${r.int(5000)}` },
    { name: "position", value: r.pick(["manager", "developer", "owner", "student", "designer"]) },
    { name: "last_quiz_score", value: String(r.int(100)) },
    { name: "lead score", value: String(r.int(1000)) },
    { name: "referrer", value: `ref-${r.int(10_000)}` },
    { name: "newsletter", value: r.pick(["yes", "no"]) },
    { name: "timezone", value: r.pick(["Europe/Moscow", "Europe/Berlin", "Asia/Almaty", "Asia/Dubai"]) },
    { name: "notes", value: `Called on day ${r.int(700)}; interested in ${r.pick(PLANS)} plan, asked about delivery to ${r.pick(cities)}.` },
    { name: "external id", value: `crm-${i}` },
    { name: "consent", value: r.pick(["2024-01-10", "2025-03-02", "2025-11-30"]) },
  ];
}
