"""Template tests for the chatcrm chart: render with helm and check what Kubernetes would receive.

Run by charts/chatcrm/test.sh with the kubernetes-validate venv's Python (it has PyYAML) and HELM set.
"""
import os
import subprocess
import unittest

import yaml

CHART = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(CHART))
HELM = os.environ.get("HELM", "helm")
KUBE_VERSION = os.environ.get("KUBE_VERSION", "1.30.0")
SERVICES = ["gateway", "channels", "contacts", "flow-runtime", "identity-merge", "integrations", "export"]


def render(*args):
    out = subprocess.run(
        [HELM, "template", "rel", CHART, "--kube-version", KUBE_VERSION, *args],
        check=True, capture_output=True, text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render_error(*args):
    proc = subprocess.run([HELM, "template", "rel", CHART, "--kube-version", KUBE_VERSION, *args], capture_output=True, text=True)
    return proc.returncode, proc.stderr


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(deployment):
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


class ChartTemplates(unittest.TestCase):
    def test_one_deployment_and_service_per_service(self):
        docs = render()
        self.assertEqual(sorted(by_kind(docs, "Deployment")), sorted(f"rel-{s}" for s in SERVICES))
        self.assertEqual(sorted(by_kind(docs, "Service")), sorted(f"rel-{s}" for s in SERVICES))

    def test_probes_use_grpc_health_on_the_grpc_port(self):
        for name, d in by_kind(render(), "Deployment").items():
            c = d["spec"]["template"]["spec"]["containers"][0]
            port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
            self.assertEqual(c["readinessProbe"]["grpc"]["port"], port, name)
            self.assertEqual(c["startupProbe"]["grpc"]["port"], port, name)
            self.assertEqual(env_of(d)["GRPC_PORT"], str(port), name)

    def test_containers_are_hardened(self):
        for name, d in by_kind(render(), "Deployment").items():
            pod = d["spec"]["template"]["spec"]
            self.assertTrue(pod["securityContext"]["runAsNonRoot"], name)
            sc = pod["containers"][0]["securityContext"]
            self.assertTrue(sc["readOnlyRootFilesystem"], name)
            self.assertFalse(sc["allowPrivilegeEscalation"], name)
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], name)

    def test_gateway_gets_http_port_and_every_peer_address(self):
        gateway = by_kind(render(), "Deployment")["rel-gateway"]
        env = env_of(gateway)
        self.assertEqual(env["HTTP_PORT"], "8080")
        self.assertEqual(env["CONTACTS_GRPC_ADDR"], "rel-contacts:50052")
        self.assertEqual(env["FLOW_RUNTIME_GRPC_ADDR"], "rel-flow-runtime:50053")
        self.assertEqual(len([k for k in env if k.endswith("_GRPC_ADDR")]), 6)

    def test_a_service_gets_the_addresses_of_its_peers_only(self):
        deployments = by_kind(render(), "Deployment")
        flows = env_of(deployments["rel-flow-runtime"])
        self.assertEqual(flows["CONTACTS_GRPC_ADDR"], "rel-contacts:50052")
        self.assertEqual([k for k in flows if k.endswith("_GRPC_ADDR")], ["CONTACTS_GRPC_ADDR"])
        self.assertEqual([k for k in env_of(deployments["rel-contacts"]) if k.endswith("_GRPC_ADDR")], [])

    def test_channels_gets_its_webhook_port_and_secrets_key_from_a_secret(self):
        docs = render()
        channels = by_kind(docs, "Deployment")["rel-channels"]
        env = env_of(channels)
        self.assertEqual(env["WEBHOOK_PORT"], "8081")
        self.assertEqual(env["CHANNEL_SECRETS_KEY"], {"secretKeyRef": {"name": "chatcrm-channels", "key": "CHANNEL_SECRETS_KEY"}})
        ports = {p["name"]: p["port"] for p in by_kind(docs, "Service")["rel-channels"]["spec"]["ports"]}
        self.assertEqual(ports, {"grpc": 50051, "webhooks": 8081})
        self.assertNotIn("WEBHOOK_PORT", env_of(by_kind(docs, "Deployment")["rel-contacts"]))

    def test_gateway_signs_tokens_with_a_secret_from_a_secret_and_trusts_the_ingress(self):
        env = env_of(by_kind(render(), "Deployment")["rel-gateway"])
        self.assertEqual(env["ACCESS_TOKEN_SECRET"], {"secretKeyRef": {"name": "chatcrm-gateway", "key": "ACCESS_TOKEN_SECRET"}})
        self.assertEqual(env["HTTP_TRUST_PROXY"], "true")
        self.assertNotIn("ACCESS_TOKEN_SECRET", env_of(by_kind(render(), "Deployment")["rel-contacts"]))

    def test_defaults_merge_under_service_overrides(self):
        docs = render("--set", "defaults.replicas=4", "--set", "services.contacts.replicas=1", "--set", "services.contacts.env.EXTRA=yes")
        deployments = by_kind(docs, "Deployment")
        self.assertEqual(deployments["rel-contacts"]["spec"]["replicas"], 1)
        self.assertEqual(deployments["rel-channels"]["spec"]["replicas"], 4)
        self.assertEqual(env_of(deployments["rel-contacts"])["EXTRA"], "yes")
        self.assertNotIn("EXTRA", env_of(deployments["rel-channels"]))

    def test_disabled_service_is_not_rendered_nor_given_to_the_gateway(self):
        docs = render("--set", "services.export.enabled=false")
        self.assertNotIn("rel-export", by_kind(docs, "Deployment"))
        self.assertNotIn("EXPORT_GRPC_ADDR", env_of(by_kind(docs, "Deployment")["rel-gateway"]))

    def test_production_values_take_mongo_url_from_a_secret(self):
        docs = render("-f", os.path.join(ROOT, "deploy/values/production.yaml"))
        env = env_of(by_kind(docs, "Deployment")["rel-contacts"])
        self.assertEqual(env["MONGO_URL"], {"secretKeyRef": {"name": "chatcrm-mongo", "key": "MONGO_URL"}})
        self.assertEqual(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://otel-collector.observability:4318")

    def test_query_indexes_stay_on_unless_turned_off(self):
        for args, expected in (([], "true"), (["--set", "mongo.queryIndexes=false"], "false")):
            for deployment in by_kind(render(*args), "Deployment").values():
                self.assertEqual(env_of(deployment)["MONGO_QUERY_INDEXES"], expected, args)

    def test_schema_rejects_bad_values(self):
        for args in (["--set", "services.contacts.grpcPort=70000"], ["--set", "kafka.brokers=no-port"], ["--set", "services.unknown.grpcPort=1"], ["--set", "mongo.url=postgres://x"]):
            code, err = render_error(*args)
            self.assertNotEqual(code, 0, args)
            self.assertIn("values don't meet the specifications of the schema", err, args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
