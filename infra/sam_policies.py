"""The IAM grants each function of template.yaml gets in AWS.

SAM's own translator (aws-sam-translator, installed with cfn-lint) expands
the template as CloudFormation would receive it: policy templates such as
DynamoDBCrudPolicy become statements, and event sources add their managed
policies. Prints JSON: {binary: [{"actions": [...], "resources": [...]}]},
where a resource is the logical id the statement names (or "*").

With --roles, prints each function's role as the translator made it, for
the local stack to create in the emulator: {binary: {"logical_id",
"policies": [{"name", "document"}], "managed": [arn, ...]}}, the documents
still holding their intrinsics (Ref, Fn::GetAtt, Fn::Sub).

Usage: python infra/sam_policies.py [--roles] template.yaml
"""

import json
import os
import re
import sys

from moto.iam.aws_managed_policies import aws_managed_policies_data
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# What the AWS managed policies SAM attaches allow, as AWS publishes them:
# the translator names them by ARN only; moto ships their documents (and
# loads the same ones into the local emulator).
MANAGED = json.loads(aws_managed_policies_data)


class NoManagedPolicyLookups:
    """The translator asks IAM for managed policy ARNs only by name; the
    template names none, so nothing is looked up (and nothing goes online)."""

    def load(self):
        return {}


def logical_ids(value):
    """The logical ids an intrinsic names (Ref, Fn::GetAtt, inside Fn::Sub)."""
    if isinstance(value, str):
        return ["*"] if value == "*" else [value]
    if isinstance(value, list):
        return [i for v in value for i in logical_ids(v)]
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, names = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})
            inline = [
                ref.split(".")[0]
                for ref in re.findall(r"\$\{([^}!]+)\}", text)
                if not ref.startswith("AWS::") and ref not in names
            ]
            return inline + logical_ids(list(names.values()))
        if "Ref" in value:
            return [value["Ref"]]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return [att[0] if isinstance(att, list) else att.split(".")[0]]
        return [i for v in value.values() for i in logical_ids(v)]
    return []


def translate(path):
    """The translated template and each function's binary by logical id."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse(open(path).read())
    binaries = {}
    for lid, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            # What `sam package` does before the transform.
            resource["Properties"]["CodeUri"] = "s3://packaged/code.zip"
            binaries[lid] = resource["Metadata"]["BuildProperties"]["Binary"]
    return transform(template, {}, NoManagedPolicyLookups()), binaries


def roles(path):
    out, binaries = translate(path)
    result = {}
    for lid, binary in binaries.items():
        role = out["Resources"][lid + "Role"]["Properties"]
        result[binary] = {
            "logical_id": lid,
            "policies": [
                {"name": p["PolicyName"], "document": p["PolicyDocument"]}
                for p in role.get("Policies", [])
            ],
            "managed": role.get("ManagedPolicyArns", []),
        }
    return result


def grants(path):
    out, binaries = translate(path)
    grants = {}
    for lid, binary in binaries.items():
        role = out["Resources"][lid + "Role"]["Properties"]
        statements = []
        for policy in role.get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                if st.get("Effect") != "Allow":
                    continue
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                statements.append(
                    {"actions": actions, "resources": logical_ids(st["Resource"]), "managed": False}
                )
        for arn in role.get("ManagedPolicyArns", []):
            name = arn.rsplit("/", 1)[-1]
            if name not in MANAGED:
                sys.exit(f"{lid}: managed policy {name} is not known to moto")
            for st in MANAGED[name]["Document"]["Statement"]:
                if st.get("Effect") != "Allow":
                    continue
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                statements.append({"actions": actions, "resources": resources, "managed": True})
        grants[binary] = statements
    return grants


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--roles":
        json.dump(roles(args[1]), sys.stdout, indent=1, sort_keys=True)
    else:
        json.dump(grants(args[0]), sys.stdout, indent=1, sort_keys=True)
