"""Helpers shared by the feature specifications."""

import dataclasses


def check_positive(spec, attr: str, minimum: int = 1) -> None:
    """Raises ValueError unless ``spec.<attr>`` is an integer >= ``minimum``."""
    value = getattr(spec, attr)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"Feature {spec.name!r}: `{attr}` must be an integer >= {minimum}. "
            f"Received: `{attr}={value!r}`"
        )


def check_name(spec) -> None:
    if not isinstance(spec.name, str) or not spec.name:
        raise ValueError(
            f"`name` must be a non-empty string. Received: `name={spec.name!r}`"
        )


def spec_to_dict(spec) -> dict:
    """The YAML form of a spec: name, kind and every non-default field."""
    out = {"name": spec.name, "kind": spec.kind}
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if field.name != "name" and value != field.default:
            out[field.name] = list(value) if isinstance(value, tuple) else value
    return out
