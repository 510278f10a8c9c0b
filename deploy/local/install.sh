#!/usr/bin/env bash
# Installs what the local infrastructure needs into CHATCRM_CACHE (default ~/.cache/chatcrm).
# Idempotent: each part is skipped when its finished marker exists. Parts: kafka ferretdb helm validate all.
set -euo pipefail
source "$(dirname "$0")/common.sh"

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2) but is not on PATH"; }

install_kafka() {
  [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
  need mvn "Apache Maven, to fetch Kafka $KAFKA_VERSION from Maven Central"
  need java "Java 17+, to run Kafka"
  log "installing Kafka $KAFKA_VERSION jars into $KAFKA_LIBS"
  local work; work=$(mktemp -d)
  # The binary distribution is not on Maven Central; the broker jar and its runtime dependencies are, plus
  # the reload4j logging binding that the distribution adds.
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>chatcrm.local</groupId><artifactId>kafka-runtime</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>$RELOAD4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$KAFKA_LIBS" && mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  rm -rf "$work"
  touch "$KAFKA_LIBS/.complete"
}

install_ferretdb() {
  [[ -x "$FERRETDB_BIN" ]] && return 0
  need go "Go, to build FerretDB"
  log "building FerretDB $FERRETDB_VERSION into $FERRETDB_BIN (takes a few minutes once)"
  # Not 'go install ...@version': FerretDB reads its version from build/version/version.txt, which its module
  # archive leaves out (the binary panics at start), and the module proxy here refuses the version list that
  # 'go install' asks for. So: download the exact module, add the version files, build it.
  local src work
  src=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$src" ]] || die "could not download github.com/FerretDB/FerretDB@$FERRETDB_VERSION"
  work=$(mktemp -d)
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  echo "$FERRETDB_VERSION" >"$work/build/version/version.txt"
  echo "chatcrm-local" >"$work/build/version/package.txt"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  rm -rf "$work"
}

install_helm() {
  [[ -x "$HELM_BIN" ]] && return 0
  need go "Go, to build helm"
  log "building helm $HELM_VERSION into $HELM_BIN (takes a few minutes once)"
  GOBIN="$(dirname "$HELM_BIN")" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

install_validate() {
  [[ -x "$VALIDATE_VENV/bin/kubernetes-validate" ]] && return 0
  need python3 "Python 3, for kubernetes-validate"
  log "installing kubernetes-validate into $VALIDATE_VENV"
  python3 -m venv "$VALIDATE_VENV"
  "$VALIDATE_VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate
}

parts=("$@")
[[ ${#parts[@]} -eq 0 || "${parts[0]}" == "all" ]] && parts=(kafka ferretdb helm validate)
for part in "${parts[@]}"; do
  case "$part" in
    kafka) install_kafka ;;
    ferretdb) install_ferretdb ;;
    helm) install_helm ;;
    validate) install_validate ;;
    *) die "unknown part '$part' (expected kafka, ferretdb, helm, validate or all)" ;;
  esac
done
