// Writes the public API reference (docs/api-reference.md) from proto/, so the document cannot drift from the
// contracts: proto/generate.sh runs it after `buf generate`, and its --check mode diffs a fresh copy.
//   node tools/api-reference.mjs [outfile]   (default docs/api-reference.md)
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, ScalarType } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outfile = path.resolve(root, process.argv[2] ?? "docs/api-reference.md");

// What the gateway serves; the other chatcrm packages (Kafka events, integrations) are internal.
// chatcrm.gateway.v1 may not exist yet; a package without files simply contributes nothing.
// The document follows this order: the gateway's own services (sign-in, access, live updates) before the domain ones.
const PUBLIC_PACKAGES = ["chatcrm.gateway.v1", "chatcrm.contacts.v1", "chatcrm.channels.v1", "chatcrm.flows.v1", "chatcrm.system.v1"];

// Well-known types have their own JSON form instead of an object with their fields.
const WKT_JSON = {
  "google.protobuf.Timestamp": 'an RFC 3339 string in UTC, e.g. `"2024-05-01T12:30:00Z"`',
  "google.protobuf.Duration": 'a string of seconds with an `s` suffix, e.g. `"1.5s"`',
  "google.protobuf.Empty": "`{}`",
  "google.protobuf.Struct": "any JSON object",
  "google.protobuf.Value": "any JSON value",
  "google.protobuf.ListValue": "a JSON array",
  "google.protobuf.FieldMask": 'a string of comma-separated lowerCamelCase paths, e.g. `"firstName,tags"`',
  "google.protobuf.Any": 'an object with `"@type"` and the fields of the packed message',
};

// buf includes the well-known imports (needed to resolve types) and source code info (the comments) by default.
const bytes = execFileSync(path.join(root, "node_modules/.bin/buf"), ["build", "proto", "--as-file-descriptor-set", "-o", "-"], {
  cwd: root,
  maxBuffer: 256 * 1024 * 1024,
});
const fileSet = fromBinary(FileDescriptorSetSchema, bytes);
const registry = createFileRegistry(fileSet);

// Source locations are addressed by paths of descriptor field numbers (message_type = 4, then its index, then
// field = 2, ...). Walking each path down the decoded protos keys the comment by the very object a Desc exposes
// as `.proto`, so a lookup needs no path arithmetic. The file object itself stands for its package statement.
const CHILD_LISTS = {
  "google.protobuf.FileDescriptorProto": { 4: "messageType", 5: "enumType", 6: "service" },
  "google.protobuf.DescriptorProto": { 2: "field", 3: "nestedType", 4: "enumType", 8: "oneofDecl" },
  "google.protobuf.EnumDescriptorProto": { 2: "value" },
  "google.protobuf.ServiceDescriptorProto": { 2: "method" },
};
const PACKAGE_FIELD = 2;
const comments = new Map();
for (const file of fileSet.file) {
  for (const loc of file.sourceCodeInfo?.location ?? []) {
    const text = loc.leadingComments || loc.trailingComments;
    if (!text) continue;
    if (loc.path.length === 1 && loc.path[0] === PACKAGE_FIELD) {
      comments.set(file, text);
      continue;
    }
    let node = file;
    for (let i = 0; node && i < loc.path.length; i += 2) node = node[CHILD_LISTS[node.$typeName]?.[loc.path[i]]]?.[loc.path[i + 1]];
    if (node && node !== file) comments.set(node, text);
  }
}

// Comments are plain text; keep `code` spans as written but stop <, > and * from turning into HTML or emphasis.
const ESCAPES = { "<": "&lt;", ">": "&gt;", "*": "\\*" };
const md = (text) => text.split(/(`[^`]*`)/).map((part, i) => (i % 2 ? part : part.replace(/[<>*]/g, (c) => ESCAPES[c]))).join("");
const block = (proto) => md((comments.get(proto) ?? "").split("\n").map((line) => line.trim()).join("\n").trim());
const oneLine = (proto) => md((comments.get(proto) ?? "").replace(/\s+/g, " ").trim()).replace(/\|/g, "\\|");
const anchor = (typeName) => typeName.toLowerCase().replace(/[^a-z0-9]+/g, "-");
const isWkt = (desc) => desc.typeName.startsWith("google.protobuf.");
const pkgOf = (desc) => desc.file.proto.package;
// Code-unit order, not localeCompare: the output must not depend on the machine's locale or ICU data.
const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const rank = (pkg) => (PUBLIC_PACKAGES.includes(pkg) ? PUBLIC_PACKAGES.indexOf(pkg) : PUBLIC_PACKAGES.length);
const byPackageThenName = (a, b) => rank(pkgOf(a)) - rank(pkgOf(b)) || compare(a.typeName, b.typeName);

// Within its own package a type goes by its short name; other packages' types keep the qualified name.
function link(desc, fromPkg) {
  if (isWkt(desc)) return `[${desc.typeName}](#json-encoding)`;
  const name = pkgOf(desc) === fromPkg ? desc.typeName.slice(fromPkg.length + 1) : desc.typeName;
  return `[${name}](#${anchor(desc.typeName)})`;
}

const scalar = (type) => ScalarType[type].toLowerCase();
function fieldType(field, fromPkg) {
  const element = (kind) => (kind === "scalar" ? scalar(field.scalar) : link(field[kind], fromPkg));
  let type;
  if (field.fieldKind === "list") type = `repeated ${element(field.listKind)}`;
  else if (field.fieldKind === "map") type = `map&lt;${scalar(field.mapKey)}, ${element(field.mapKind)}&gt;`;
  else type = element(field.fieldKind);
  if (field.proto.proto3Optional) type = `optional ${type}`;
  if (field.oneof) type += ` (oneof \`${field.oneof.name}\`)`;
  return type;
}

const publicServices = fileSet.file
  .filter((file) => PUBLIC_PACKAGES.includes(file.package) && file.name.endsWith("_service.proto"))
  .flatMap((file) => file.service.map((s) => registry.getService(`${file.package}.${s.name}`)))
  .filter((service) => service.name.endsWith("Service"))
  .sort(byPackageThenName);

// Everything a client can send or receive: the methods' messages and, transitively, their fields' types.
const types = new Map();
const wktsUsed = new Set();
function reach(desc) {
  if (isWkt(desc)) return void wktsUsed.add(desc.typeName);
  if (types.has(desc.typeName)) return;
  types.set(desc.typeName, desc);
  if (desc.kind === "message") for (const field of desc.fields) if (field.message ?? field.enum) reach(field.message ?? field.enum);
}
for (const service of publicServices) for (const method of service.methods) [method.input, method.output].forEach(reach);
// Map.groupBy would do, but it needs Node 21 and the engines field allows 20.
const byPackage = new Map();
for (const desc of [...types.values()].sort(byPackageThenName)) {
  byPackage.set(pkgOf(desc), [...(byPackage.get(pkgOf(desc)) ?? []), desc]);
}
const packages = [...byPackage.keys()];

const out = [];
const emit = (...lines) => out.push(...lines);
const paragraph = (text) => text && emit(text, "");

emit(
  "# ChatCRM API reference",
  "",
  "> Generated by `npm run proto:gen` (tools/api-reference.mjs) from the `.proto` files in `proto/`; do not edit by",
  "> hand. Change the comments in the `.proto` files and regenerate.",
  "",
  "The gateway serves these services over the Connect protocol (JSON or binary), gRPC and gRPC-Web. A unary method is",
  "a plain HTTP call: `POST /<package>.<Service>/<Method>` with `Content-Type: application/json` and the request",
  "message as a JSON object in the body; the response body is the response message (see [JSON encoding](#json-encoding)).",
  "Server-streaming methods need a client that speaks the Connect streaming protocol, gRPC or gRPC-Web.",
  "",
  "## Contents",
  "",
  "- [JSON encoding](#json-encoding)",
  "- [Services](#services)",
  ...publicServices.map((s) => `  - [${s.typeName}](#${anchor(s.typeName)}): ${s.methods.map((m) => `[${m.name}](#${anchor(`${s.typeName}.${m.name}`)})`).join(", ")}`),
  "- [Messages](#messages)",
  ...packages.map((pkg) => `  - [${pkg}](#${anchor(pkg)})`),
  "",
  "## JSON encoding",
  "",
  "Connect JSON is the protobuf JSON mapping:",
  "",
  "- Fields are named in lowerCamelCase, as the tables below list them; the proto names (`snake_case`) are accepted",
  "  in requests too.",
  "- Fields at their default value (`0`, `\"\"`, `false`, empty lists and maps, the first enum value) are left out of",
  "  responses; read a missing field as its default.",
  "- 64-bit integers (`int64`, `uint64`, `sint64`, `fixed64`, `sfixed64`) are JSON strings, e.g. `\"42\"`; requests",
  "  may send numbers.",
  "- `bytes` are base64 strings.",
  "- Enums are their value names as strings, e.g. `\"CONTACT_STATUS_SUBSCRIBED\"`.",
  "- A `oneof` is a set of fields of which at most one is present.",
  "- An `optional` field is present whenever it is set, even to its default value; absent means \"not set\".",
  ...[...wktsUsed].sort(compare).map((name) => `- \`${name}\` is ${WKT_JSON[name] ?? "written as the protobuf JSON mapping specifies for it"}.`),
  "",
  "## Services",
  "",
);

for (const service of publicServices) {
  emit(`<a id="${anchor(service.typeName)}"></a>`, "", `### ${service.typeName}`, "");
  // The package comment in a *_service.proto says what the whole API is for and how calls are scoped.
  paragraph(block(service.file.proto));
  paragraph(block(service.proto));
  for (const method of service.methods) {
    const pkg = pkgOf(service);
    emit(`<a id="${anchor(`${service.typeName}.${method.name}`)}"></a>`, "", `#### ${service.name}.${method.name}`, "");
    emit(`\`POST /${service.typeName}/${method.name}\` · ${method.methodKind.replace("_", "-")}`, "");
    paragraph(block(method.proto));
    if (method.methodKind === "unary") {
      emit(`- Request: ${link(method.input, pkg)}`, `- Response: ${link(method.output, pkg)}`, "");
    } else if (method.methodKind === "server_streaming") {
      emit(`- Request: ${link(method.input, pkg)}`, `- Response: a stream of ${link(method.output, pkg)}`);
      emit("- **Server-streaming**: call it with the Connect streaming protocol (`application/connect+json`), gRPC or", "  gRPC-Web; a plain JSON POST (e.g. curl) does not work.", "");
    } else {
      // None exist today; gRPC-Web and browsers cannot send request streams, so a reader must not mistake them.
      const bidi = method.methodKind === "bidi_streaming";
      emit(`- Request: a stream of ${link(method.input, pkg)}`, `- Response: ${bidi ? "a stream of " : ""}${link(method.output, pkg)}`);
      emit(`- **${bidi ? "Bidirectional" : "Client"}-streaming**: needs a gRPC or Connect streaming client; not callable with plain JSON or gRPC-Web.`, "");
    }
  }
}

emit("## Messages", "");
for (const pkg of packages) {
  emit(`<a id="${anchor(pkg)}"></a>`, "", `### ${pkg}`, "");
  for (const desc of byPackage.get(pkg)) {
    const name = desc.typeName.slice(pkg.length + 1);
    emit(`<a id="${anchor(desc.typeName)}"></a>`, "", `#### ${name}`, "");
    paragraph(block(desc.proto));
    if (desc.kind === "enum") {
      emit("| Value | Number | Description |", "| --- | --- | --- |");
      for (const value of desc.values) emit(`| \`${value.name}\` | ${value.number} | ${oneLine(value.proto)} |`);
      emit("");
      continue;
    }
    for (const oneof of desc.oneofs) {
      const note = oneLine(oneof.proto);
      emit(`At most one of ${oneof.fields.map((f) => `\`${f.jsonName}\``).join(", ")} is set (oneof \`${oneof.name}\`).${note ? ` ${note}` : ""}`, "");
    }
    if (desc.fields.length === 0) {
      emit("No fields (`{}` in JSON).", "");
      continue;
    }
    emit("| Field | Type | Description |", "| --- | --- | --- |");
    for (const field of desc.fields) emit(`| \`${field.jsonName}\` | ${fieldType(field, pkg)} | ${oneLine(field.proto)} |`);
    emit("");
  }
}

writeFileSync(outfile, `${out.join("\n").trimEnd()}\n`);
