"""Resolve CloudFormation intrinsics (Ref, GetAtt, Sub, If, Join, Select, FindInMap, conditions)
against a template's parameter defaults and the local names of provisioned resources.

Resources are resolved on demand through `lookup(logical_id) -> LocalResource`, so a resource that
references another one (a queue's RedrivePolicy naming its dead-letter queue) gets it provisioned
first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

NO_VALUE = object()  # AWS::NoValue: the property or list element disappears


@dataclass(frozen=True)
class LocalResource:
    """What a template resource became locally: `ref` is what `!Ref` returns, `attributes` the
    `!GetAtt` names (Arn, QueueUrl, ...)."""

    logical_id: str
    type: str
    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


class UnresolvableError(ValueError):
    """An intrinsic the local stack cannot resolve (named in the message)."""


class Resolver:
    def __init__(
        self,
        template: Mapping[str, Any],
        lookup: Callable[[str], LocalResource],
        *,
        pseudo: Mapping[str, str],
        parameter_overrides: Mapping[str, str] | None = None,
        forced_conditions: frozenset[str] = frozenset(),
    ) -> None:
        self.template = template
        self._lookup = lookup
        self._pseudo = dict(pseudo)
        self._overrides = dict(parameter_overrides or {})
        unknown = set(self._overrides) - set(template.get("Parameters", {}))
        if unknown:
            raise UnresolvableError(f"parameter overrides for parameters the template lacks: {sorted(unknown)}")
        for name, value in self._overrides.items():
            _checked(name, template["Parameters"][name], value)
        self._forced = forced_conditions
        self._conditions: dict[str, bool] = {}

    # --- parameters and conditions ------------------------------------------------------------
    def parameter(self, name: str) -> str:
        declared = self.template.get("Parameters", {})
        if name not in declared:
            raise UnresolvableError(f"unknown parameter {name!r}")
        if name in self._overrides:
            return _checked(name, declared[name], self._overrides[name])
        if "Default" not in declared[name]:
            raise UnresolvableError(f"parameter {name!r} has no Default: pass it in parameter_overrides")
        default = declared[name]["Default"]
        return ",".join(map(str, default)) if isinstance(default, list) else str(default)

    def condition(self, name: str) -> bool:
        """A named condition's value; conditions in `forced_conditions` are true locally."""
        if name in self._forced:
            return True
        if name not in self._conditions:
            definition = self.template.get("Conditions", {}).get(name)
            if definition is None:
                raise UnresolvableError(f"unknown condition {name!r}")
            self._conditions[name] = self._truth(definition)
        return self._conditions[name]

    def unforced(self, name: str) -> bool:
        """The condition's value from the parameters alone (ignoring `forced_conditions` for it)."""
        return self._truth(self.template["Conditions"][name])

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = (self.resolve(item) for item in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._truth(arg[0])
            if key == "Fn::And":
                return all(self._truth(item) for item in arg)
            if key == "Fn::Or":
                return any(self._truth(item) for item in arg)
        raise UnresolvableError(f"cannot evaluate condition {value!r}")

    # --- values ----------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic replaced; AWS::NoValue entries removed from dicts and lists."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def text(self, value: Any) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, (dict, list)) or resolved is NO_VALUE:
            raise UnresolvableError(f"{value!r} does not resolve to a string")
        return str(resolved)

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        if name in self.template.get("Resources", {}):
            return self._lookup(name).ref
        raise UnresolvableError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self._lookup(logical_id)
        if attribute not in resource.attributes:
            raise UnresolvableError(f"!GetAtt {logical_id}.{attribute}: not known locally for {resource.type}")
        return resource.attributes[attribute]

    def _function(self, key: str, arg: Any) -> Any:
        if key in {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"}:
            return self._truth({key: arg})
        functions: dict[str, Callable[[Any], Any]] = {
            "Fn::GetAtt": self._get_att_function,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Join": lambda a: self.text(a[0]).join(str(item) for item in self.resolve(a[1])),
            "Fn::Select": lambda a: self.resolve(a[1])[int(self.text(a[0]))],
            "Fn::Split": lambda a: self.text(a[1]).split(self.text(a[0])),
            "Fn::FindInMap": lambda a: self.template["Mappings"][self.text(a[0])][self.text(a[1])][self.text(a[2])],
        }
        if key not in functions:
            raise UnresolvableError(f"{key} is not supported locally")
        return functions[key](arg)

    def _get_att_function(self, arg: Any) -> str:
        logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self.get_att(self.text(logical_id), self.text(attribute))

    def _if(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _sub(self, arg: Any) -> str:
        template_text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {name: self.text(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return local[name]
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.text({"Ref": name})

        return re.sub(r"\$\{([^}]+)\}", substitute, template_text)


def _checked(name: str, declaration: Mapping[str, Any], value: str) -> str:
    """An override, refused as CloudFormation would refuse it (AllowedPattern/Values, bounds)."""
    pattern = declaration.get("AllowedPattern")
    allowed = declaration.get("AllowedValues")
    problems = []
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        problems.append(f"does not match AllowedPattern {pattern}")
    if allowed is not None and value not in [str(v) for v in allowed]:
        problems.append(f"is not one of {allowed}")
    if declaration.get("Type") == "Number":
        number = float(value)
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            problems.append(f"is below MinValue {declaration['MinValue']}")
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            problems.append(f"is above MaxValue {declaration['MaxValue']}")
    if problems:
        raise UnresolvableError(f"parameter {name}={value!r} " + "; ".join(problems))
    return value
