/**
 * Turns an email body into what the person actually wrote: HTML flattened to plain text, and the quoted previous
 * message that mail clients append to every reply cut off, so the CRM conversation does not repeat itself.
 */

/** Tags that end a line when they open or close. */
const LINE_TAGS = new Set([
  "address", "article", "aside", "dd", "div", "dl", "dt", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
  "header", "hr", "li", "main", "nav", "ol", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
]);

const NAMED_ENTITIES: Record<string, string> = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " ", ndash: "–", mdash: "—", hellip: "…",
  laquo: "«", raquo: "»", ldquo: "“", rdquo: "”", lsquo: "‘", rsquo: "’", copy: "©", reg: "®", trade: "™",
};

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/**
 * A plain-text rendering of an HTML body: one line per block, a blank line after a paragraph, and the lines of a
 * <blockquote> prefixed with ">" the way text mail quotes, so trimQuotedReply() treats both formats alike.
 */
export function htmlToText(html: string): string {
  const body = html.replace(/<!--[\s\S]*?-->/g, "").replace(/<(head|style|script|title)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, "");
  const lines: string[] = [];
  let line = "";
  let quoteDepth = 0;
  const push = (always: boolean) => {
    const text = line.replace(/\s+/g, " ").trim();
    if (text || always) lines.push("> ".repeat(quoteDepth) + text);
    line = "";
  };
  const token = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*>|([^<]+)|</g;
  for (let m = token.exec(body); m; m = token.exec(body)) {
    const [, closing, rawTag, text] = m;
    if (text !== undefined || rawTag === undefined) {
      line += decodeEntities(text ?? "<");
      continue;
    }
    const tag = rawTag.toLowerCase();
    if (tag === "br") push(true);
    else if (tag === "p") {
      push(false);
      if (closing) lines.push("> ".repeat(quoteDepth).trimEnd());
    } else if (tag === "blockquote") {
      push(false);
      quoteDepth = Math.max(0, quoteDepth + (closing ? -1 : 1));
    } else if (LINE_TAGS.has(tag)) push(false);
  }
  push(false);
  // Blocks nest (<div><p>…</p></div>), so blank lines pile up: keep at most one in a row.
  return lines
    .join("\n")
    .replace(/[ \t]+$/gm, "")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

const ATTRIBUTION_LINES = [
  /^On\s.+\swrote:$/i, // Gmail, Apple Mail, Thunderbird
  /^Le\s.+\sa\s+écrit\s*:$/i,
  /^Am\s.+\sschrieb\s.*:$/i,
  /^.*\d.*\s(пишет|написал|написала|написал\(а\)):$/i,
  /^.*\d.*<[^<>\s]+@[^<>\s]+>\s*:$/, // Yandex / Mail.ru: "12.03.2024, 10:15, "Name" <a@b.ru>:"
  /^-{2,}\s*(Original Message|Исходное сообщение|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}$/i,
];

const isBlank = (line: string) => line.trim() === "";
const isQuoted = (line: string) => line.trimStart().startsWith(">");

/** Where the quoted previous message starts ("On … wrote:" and its kin) and how many lines the attribution takes. */
function findAttribution(lines: string[]): { at: number; length: number } | undefined {
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").trim();
    if (!line) continue;
    if (ATTRIBUTION_LINES.some((re) => re.test(line))) return { at: i, length: 1 };
    // Gmail wraps a long attribution: "On Mon, 4 Mar 2024 at 10:15, Jane Doe <" / "jane@example.com> wrote:".
    const next = (lines[i + 1] ?? "").trim();
    if (/^On\s/i.test(line) && next && /^On\s.+\swrote:$/i.test(`${line} ${next}`)) return { at: i, length: 2 };
    // Outlook: an optional rule of underscores, then a header block "From: …" / "Sent: …". Gmail introduces a
    // forwarded message with the same block under a "Forwarded message" rule: that one is content, not a quote.
    const previous = (lines[i - 1] ?? "").trim();
    if (/^(From|От):\s/i.test(line) && /^(Sent|Date|Отправлено|Дата):\s/i.test(next) && !/forwarded message|пересылаемое сообщение/i.test(previous)) {
      const rule = /^_{8,}$/.test(previous);
      return rule ? { at: i - 1, length: 3 } : { at: i, length: 2 };
    }
  }
  return undefined;
}

/**
 * The reply without the message it quotes: everything from a standard attribution line ("On … wrote:") on, and
 * a block of ">" lines at the end. A bottom-posted reply (attribution and quote first) keeps what follows the quote.
 * Never returns nothing for a non-empty text: when everything looks quoted, the text is kept as it came.
 */
export function trimQuotedReply(text: string): string {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let kept = lines;
  const attribution = findAttribution(lines);
  if (attribution) {
    const before = lines.slice(0, attribution.at);
    if (before.some((l) => !isBlank(l))) kept = before;
    else {
      let i = attribution.at + attribution.length;
      if (i < lines.length && isQuoted(lines[i] ?? "")) {
        while (i < lines.length && (isQuoted(lines[i] ?? "") || isBlank(lines[i] ?? ""))) i++;
        kept = lines.slice(i);
      }
    }
  }
  let end = kept.length;
  while (end > 0 && (isBlank(kept[end - 1] ?? "") || isQuoted(kept[end - 1] ?? ""))) end--;
  const result = kept
    .slice(0, end)
    .join("\n")
    .replace(/^(\s*\n)+/, "")
    .trimEnd();
  return result || text.trim();
}
