"""The template as CloudFormation sees it after the SAM transform, for `make validate`'s linters.

Runs aws-sam-translator (the library behind `Transform: AWS::Serverless-2016-10-31`) offline, with
.venv-sam's python:

    .venv-sam/bin/python scripts/translate_template.py template.yaml .aws-sam/lint/template.json

Each function's CodeUri becomes an s3:// URI (what `sam deploy` uploads), so nothing is built, and
IAM is never asked for a managed policy's ARN (the translator's bundled map has the ones the
template names; one it lacks stops the translation with that name). Parameters keep their defaults.

A finding is justified once, on the resource as template.yaml writes it: a resource SAM generates
from a SAM resource (its role, event source mapping, schedule rule, permission, dead-letter
queue...) is given that resource's `cfn-lint` Metadata (its ignore_checks), since cfn-lint's
serverless rules already judge those generated parts on the SAM resource. Nothing else is
copied: checkov skips stay on the resource they were written for (SAM itself keeps a function's
Metadata on its AWS::Lambda::Function), so a generated role or permission is checked in full.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.translator import Translator

# Pseudo parameters (AWS::Region, the partition of managed policy ARNs) need a region; no call is made.
REGION = "us-east-1"
CODE_BUCKET = "s3://lint-artifacts"


def with_s3_code(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of the template whose functions' and layers' local code paths are s3:// URIs."""
    template = copy.deepcopy(template)
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and properties.get("PackageType", "Zip") == "Zip":
            properties["CodeUri"] = f"{CODE_BUCKET}/{logical_id}.zip"
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"{CODE_BUCKET}/{logical_id}.zip"
    return template


def no_policy_lookup() -> dict[str, str]:
    raise SystemExit(
        "translate_template: a managed policy is not in aws-sam-translator's bundled map and would "
        "need IAM (offline here): name it by ARN in template.yaml"
    )


def translate(template: dict[str, Any], *, passthrough_metadata: bool) -> dict[str, Any]:
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.Session(region_name=REGION),
    )
    translated: dict[str, Any] = translator.translate(
        sam_template=with_s3_code(template),
        parameter_values={},
        passthrough_metadata=passthrough_metadata,
        get_managed_policy_map=no_policy_lookup,
    )
    return translated


def deployed_template(template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation deploys, plus the cfn-lint Metadata of each generated resource's SAM resource."""
    plain = translate(template, passthrough_metadata=False)
    # SAM's own option copies a SAM resource's whole Metadata onto everything generated from it:
    # used only to learn which SAM resource each generated one came from.
    inherited = translate(template, passthrough_metadata=True)["Resources"]
    written = template.get("Resources", {})
    for logical_id, resource in plain["Resources"].items():
        if logical_id in written or "Metadata" in resource:
            continue
        cfn_lint = inherited.get(logical_id, {}).get("Metadata", {}).get("cfn-lint")
        if cfn_lint is not None:
            resource["Metadata"] = {"cfn-lint": cfn_lint}
    return plain


def main() -> int:
    # Its metrics object warns on exit that nobody published it (nothing is ever sent).
    logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    template = yaml_parse(args.template.read_text(encoding="utf-8"))
    try:
        translated = deployed_template(template)
    except InvalidDocumentException as error:
        causes = "; ".join(str(cause) for cause in error.causes)
        print(f"translate_template: {args.template} does not translate: {causes}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(translated, indent=1) + "\n", encoding="utf-8")
    print(f"{args.template} -> {args.output}: {len(translated['Resources'])} resources after the SAM transform")
    return 0


if __name__ == "__main__":
    sys.exit(main())
