"""The ec2 driver (deploy/drivers/ec2) against botocore's Stubber: a real
boto3 EC2 client whose every call is checked against EC2's service model
(operation, parameter names and types) and whose expected parameters are
asserted, with EC2's answers canned. moto's EC2 server, which would run the
calls for real, cannot be installed here (PyPI is unreachable and Debian
12 does not package it): these tests say what the driver asks EC2, not
what EC2 does with it.

Run: /usr/bin/python3 -m unittest tests/cloud/ec2_driver_test.py (CTest: ec2_driver_test).
"""
import datetime
import importlib.machinery
import importlib.util
import io
import json
import os
import unittest

import boto3
from botocore.stub import ANY, Stubber

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "..", "deploy", "drivers", "ec2")
loader = importlib.machinery.SourceFileLoader("ec2_driver", DRIVER)
spec = importlib.util.spec_from_loader("ec2_driver", loader)
ec2_driver = importlib.util.module_from_spec(spec)
loader.exec_module(ec2_driver)

ARGS = ["--region", "eu-west-1", "--image-id", "ami-0123456789abcdef0", "--instance-type", "p4d.24xlarge",
        "--subnet-id", "subnet-0aa", "--security-group-id", "sg-0bb"]
TAGS = {"trainyard-broker": "broker", "trainyard-pool": "aws-a100", "trainyard-lease": "17"}
KEY_TEXT = "# Trainyard CURVE key of agent:aws-a100-3.\nprincipal = agent:aws-a100-3\npublic = P\nsecret = S\n"


def launch_request(spot=False, security=True):
    req = {
        "op": "launch", "pool": "aws-a100", "client_token": "broker-17", "tags": TAGS, "spot": spot,
        "node": {"name": "aws-a100-3", "gpu_type": "A100", "gpus": 8, "partition": "gpu", "labels": {"cloud": "aws"}},
        "bootstrap": {"broker": "tcp://10.0.0.5:5561", "bus_frontend": ["tcp://10.0.0.5:5550"],
                      "bus_backend": ["tcp://10.0.0.5:5551"]},
    }
    if security:
        req["bootstrap"]["security"] = {"mode": "curve", "principal": "agent:aws-a100-3", "key": KEY_TEXT,
                                        "authorized_keys": "service:broker K1\nagent:aws-a100-3 P\n"}
    return req


def client():
    c = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
    return c, Stubber(c)


def call(stub_client, req, args=ARGS):
    out = io.StringIO()
    import contextlib
    with contextlib.redirect_stdout(out):
        ec2_driver.main(args, io.StringIO(json.dumps(req)), stub_client)
    return json.loads(out.getvalue())


def instance(iid, state, tags, spot_request=None):
    i = {"InstanceId": iid, "State": {"Name": state, "Code": 16},
         "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    if spot_request:
        i["SpotInstanceRequestId"] = spot_request
        i["InstanceLifecycle"] = "spot"
    return i


class Launch(unittest.TestCase):
    def expected(self, spot):
        tags = [{"Key": k, "Value": v} for k, v in sorted(TAGS.items())] + [{"Key": "Name", "Value": "aws-a100-3"}]
        p = {
            "ImageId": "ami-0123456789abcdef0", "InstanceType": "p4d.24xlarge", "MinCount": 1, "MaxCount": 1,
            "ClientToken": "broker-17", "UserData": ANY,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
            "InstanceInitiatedShutdownBehavior": "terminate", "SubnetId": "subnet-0aa", "SecurityGroupIds": ["sg-0bb"],
        }
        if spot:
            p["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                "SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}
        return p

    def test_on_demand_launch_is_idempotent_tagged_and_imdsv2_only(self):
        c, stub = client()
        stub.add_response("run_instances", {"Instances": [{"InstanceId": "i-0abc"}]}, self.expected(False))
        with stub:
            self.assertEqual(call(c, launch_request()), {"ok": True, "instance_id": "i-0abc"})
        stub.assert_no_pending_responses()

    def test_spot_launch_asks_one_time_spot_terminated_on_interruption(self):
        c, stub = client()
        stub.add_response("run_instances", {"Instances": [{"InstanceId": "i-0def"}]}, self.expected(True))
        with stub:
            self.assertEqual(call(c, launch_request(spot=True))["instance_id"], "i-0def")

    def test_errors_are_classified_capacity_quota_config(self):
        for code, kind in [("InsufficientInstanceCapacity", "capacity"), ("SpotMaxPriceTooLow", "capacity"),
                           ("VcpuLimitExceeded", "quota"), ("InstanceLimitExceeded", "quota"),
                           ("InvalidAMIID.Malformed", "config"), ("UnauthorizedOperation", "config")]:
            with self.subTest(code=code):
                c, stub = client()
                stub.add_client_error("run_instances", service_error_code=code, service_message="no " + code)
                with stub:
                    r = call(c, launch_request())
                self.assertFalse(r["ok"])
                self.assertEqual(r["error"]["kind"], kind)
                self.assertIn(code, r["error"]["message"])

    def test_a_launch_without_a_token_is_refused_before_any_call(self):
        c, stub = client()
        req = launch_request()
        req["client_token"] = ""
        with stub:
            r = call(c, req)
        self.assertEqual(r["error"]["kind"], "config")

    def test_user_data_closes_metadata_to_jobs_and_writes_the_key_0600_before_the_agent_starts(self):
        text = ec2_driver.user_data(launch_request(), "trainyard-agent", "/etc/trainyard/trainyard.toml")
        lines = text.splitlines()
        firewall = lines.index("iptables -I OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT")
        umask = lines.index("umask 077")
        key = next(i for i, l in enumerate(lines) if l.startswith("cat > /etc/trainyard/keys/agent-aws-a100-3.key"))
        start = lines.index("systemctl enable --now trainyard-agent")
        self.assertLess(firewall, umask)
        self.assertLess(umask, key)
        self.assertLess(key, start)
        self.assertIn("secret = S", text)
        self.assertIn('node = "aws-a100-3"', text)
        self.assertIn('endpoint = "tcp://10.0.0.5:5561"', text)
        self.assertIn('keys_dir = "/etc/trainyard/keys"', text)
        self.assertIn('labels = {cloud="aws"}', text)
        plain = ec2_driver.user_data(launch_request(security=False), "trainyard-agent", "/etc/trainyard/trainyard.toml")
        self.assertIn('mode = "none"', plain)
        self.assertNotIn("keys/", plain)


class TerminateAndList(unittest.TestCase):
    def test_terminate_is_ok_for_an_instance_already_gone(self):
        c, stub = client()
        stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": ["i-0abc"]})
        stub.add_client_error("terminate_instances", service_error_code="InvalidInstanceID.NotFound",
                              expected_params={"InstanceIds": ["i-gone"]})
        with stub:
            self.assertEqual(call(c, {"op": "terminate", "pool": "aws-a100", "instance_id": "i-0abc", "tags": TAGS}),
                             {"ok": True})
            self.assertEqual(call(c, {"op": "terminate", "pool": "aws-a100", "instance_id": "i-gone", "tags": TAGS}),
                             {"ok": True})

    def test_list_filters_by_tag_maps_states_and_reports_spot_notices(self):
        c, stub = client()
        tags = {"trainyard-broker": "broker", "trainyard-pool": "aws-a100"}
        filters = [{"Name": "tag:trainyard-broker", "Values": ["broker"]},
                   {"Name": "tag:trainyard-pool", "Values": ["aws-a100"]},
                   {"Name": "instance-state-name", "Values": ec2_driver.LIVE_STATES}]
        marked = datetime.datetime(2026, 11, 30, 12, 0, 0, tzinfo=datetime.timezone.utc)
        stub.add_response("describe_instances", {"Reservations": [{"Instances": [
            instance("i-1", "running", dict(tags, **{"trainyard-lease": "1"})),
            instance("i-2", "pending", dict(tags, **{"trainyard-lease": "2"}), spot_request="sir-2"),
        ]}], "NextToken": "page2"}, {"Filters": filters})
        stub.add_response("describe_instances", {"Reservations": [{"Instances": [
            instance("i-3", "shutting-down", dict(tags, **{"trainyard-lease": "3"}), spot_request="sir-3"),
        ]}]}, {"Filters": filters, "NextToken": "page2"})
        stub.add_response("describe_spot_instance_requests", {"SpotInstanceRequests": [
            {"SpotInstanceRequestId": "sir-2", "Status": {"Code": "fulfilled", "UpdateTime": marked}},
            {"SpotInstanceRequestId": "sir-3", "Status": {"Code": "marked-for-termination", "UpdateTime": marked}},
        ]}, {"SpotInstanceRequestIds": ["sir-2", "sir-3"]})
        with stub:
            r = call(c, {"op": "list", "pool": "aws-a100", "tags": tags})
        stub.assert_no_pending_responses()
        self.assertTrue(r["ok"])
        by_id = {i["instance_id"]: i for i in r["instances"]}
        self.assertEqual(by_id["i-1"]["state"], "running")
        self.assertEqual(by_id["i-2"]["state"], "pending")
        self.assertEqual(by_id["i-3"]["state"], "terminating")
        self.assertEqual(by_id["i-1"]["tags"]["trainyard-lease"], "1")
        self.assertNotIn("interrupt_at", by_id["i-2"])
        self.assertEqual(by_id["i-3"]["interrupt_at"], marked.timestamp() + 120)

    def test_a_request_that_is_not_json_or_an_unknown_op_is_a_config_error(self):
        c, _ = client()
        out = io.StringIO()
        import contextlib
        with contextlib.redirect_stdout(out):
            ec2_driver.main(ARGS, io.StringIO("{not json"), c)
        self.assertEqual(json.loads(out.getvalue())["error"]["kind"], "config")
        self.assertEqual(call(c, {"op": "reboot"})["error"]["kind"], "config")


if __name__ == "__main__":
    unittest.main()
