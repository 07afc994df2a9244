"""Generate JSON Schemas (draft 2020-12) for OCSF event classes from the official OCSF definitions.

Reads a checkout (or bare clone) of github.com/ocsf/ocsf-schema at a git ref, resolves each
class the way the OCSF schema server does (``extends`` chains, ``$include`` of includes and
profiles, dictionary types and enums, object ``extends``) and writes one self-contained schema
per class, objects as ``$defs``:

    python dev/ocsf_schema/generate.py --git-dir <ocsf-schema .git> --ref v1.1.0 \\
        --profiles cloud,datetime --out tests/fixtures/ocsf/1.1.0 api_activity authentication

What the schema enforces:
- every attribute the class and its objects define, and nothing else (``additionalProperties``
  false; ``unmapped`` is the free-form place for the rest);
- ``required`` attributes; ``at_least_one`` / ``just_one`` constraints;
- JSON types from the dictionary types (``timestamp_t`` is a long: epoch milliseconds),
  ``pattern`` for the types the dictionary gives a regex (IP, hostname, UUID, ...);
- integer enums (``*_id``) as the closed set of their values;
- ``class_uid`` / ``category_uid`` as constants and ``type_uid`` = class_uid * 100 + activity_id.

Attributes of a profile that is not selected are left out, as the server does.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

PRIMITIVES = {
    "string_t": {"type": "string"},
    "integer_t": {"type": "integer"},
    "long_t": {"type": "integer"},
    "float_t": {"type": "number"},
    "boolean_t": {"type": "boolean"},
    "json_t": {},
}


class Repo:
    """Files of the ocsf-schema repository at one git ref."""

    def __init__(self, git_dir: Path, ref: str) -> None:
        self.git_dir, self.ref = git_dir, ref

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args], check=True, capture_output=True, text=True
        ).stdout

    def json(self, path: str) -> dict[str, Any]:
        return json.loads(self._git("show", f"{self.ref}:{path}"))

    def files(self, folder: str) -> list[str]:
        return [
            p
            for p in self._git("ls-tree", "-r", "--name-only", self.ref, folder).splitlines()
            if p.endswith(".json")
        ]


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: dicts merge key by key, anything else in ``override`` wins."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class Generator:
    def __init__(self, repo: Repo, profiles: set[str]) -> None:
        self.repo = repo
        self.profiles = profiles
        dictionary = repo.json("dictionary.json")
        self.dict_attrs: dict[str, Any] = dictionary["attributes"]
        self.types: dict[str, Any] = dictionary["types"]["attributes"]
        self.categories = repo.json("categories.json")["attributes"]
        self.events = {d["name"]: d for d in map(repo.json, repo.files("events"))}
        self.objects = {d["name"]: d for d in map(repo.json, repo.files("objects"))}
        self.defs: dict[str, Any] = {}

    # --- attribute sets ---------------------------------------------------------------------

    def _attributes(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A definition's own attributes with its ``$include``s applied (included ones first)."""
        attrs = dict(doc.get("attributes", {}))
        merged: dict[str, Any] = {}
        for path in attrs.pop("$include", []):
            inc = self.repo.json(path)
            group = inc.get("annotations", {})
            profile = inc.get("name") if inc.get("meta") == "profile" else None
            for name, spec in inc.get("attributes", {}).items():
                spec = merge(group, spec)
                if profile is not None:
                    spec.setdefault("profile", profile)
                merged[name] = merge(merged.get(name, {}), spec)
        for name, spec in attrs.items():
            merged[name] = merge(merged.get(name, {}), spec)
        return merged

    def _resolved(self, name: str, table: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(attributes, constraints) of a class or object after its ``extends`` chain."""
        doc = table[name]
        attrs, constraints = {}, {}
        parent = doc.get("extends")
        if parent and parent in table and parent != name:
            attrs, constraints = self._resolved(parent, table)
        attrs = merge(attrs, self._attributes(doc))
        constraints = {**constraints, **doc.get("constraints", {})}
        kept = {k: v for k, v in attrs.items() if v.get("profile") in (None, *self.profiles)}
        return kept, constraints

    # --- JSON schema --------------------------------------------------------------------------

    def _type_schema(self, type_name: str) -> dict[str, Any]:
        if type_name in PRIMITIVES:
            return dict(PRIMITIVES[type_name])
        if type_name in self.types:
            spec = self.types[type_name]
            base = self._type_schema(spec["type"]) if spec.get("type") else {}
            if "regex" in spec:
                base["pattern"] = spec["regex"]
            if "max_len" in spec:
                base["maxLength"] = spec["max_len"]
            return base
        if type_name == "object":
            return {"type": "object"}
        if type_name in self.objects:
            self._object_def(type_name)
            return {"$ref": f"#/$defs/{type_name}"}
        raise KeyError(f"unknown OCSF type {type_name!r}")

    def _attribute_schema(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        entry = merge(self.dict_attrs.get(name, {}), spec)
        if "type" not in entry:
            raise KeyError(f"attribute {name!r} has no type in the dictionary")
        schema = self._type_schema(entry["type"])
        if entry.get("enum"):
            keys = list(entry["enum"])
            schema["enum"] = sorted(int(k) for k in keys) if schema.get("type") == "integer" else sorted(keys)
        if entry.get("is_array"):
            schema = {"type": "array", "items": schema}
        return schema

    def _object_schema(self, attrs: dict[str, Any], constraints: dict[str, Any]) -> dict[str, Any]:
        props = {n: self._attribute_schema(n, s) for n, s in sorted(attrs.items())}
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        required = sorted(n for n, s in attrs.items() if s.get("requirement") == "required")
        if required:
            out["required"] = required
        if constraints.get("at_least_one"):
            out["anyOf"] = [{"required": [n]} for n in constraints["at_least_one"]]
        if constraints.get("just_one"):
            out["oneOf"] = [{"required": [n]} for n in constraints["just_one"]]
        return out

    def _object_def(self, name: str) -> None:
        if name in self.defs:
            return
        self.defs[name] = {}  # placeholder: objects refer to themselves (process.parent_process)
        attrs, constraints = self._resolved(name, self.objects)
        self.defs[name] = self._object_schema(attrs, constraints)

    def class_schema(self, name: str, version: str) -> dict[str, Any]:
        """The JSON schema of one event class."""
        self.defs = {}
        attrs, constraints = self._resolved(name, self.events)
        doc = self.events[name]
        category = self._category(name)
        category_uid = self.categories[category]["uid"]
        class_uid = category_uid * 1000 + doc["uid"]
        schema = self._object_schema(attrs, constraints)
        props = schema["properties"]
        props["class_uid"] = {"type": "integer", "const": class_uid}
        props["category_uid"] = {"type": "integer", "const": category_uid}
        activities = props["activity_id"]["enum"]
        props["type_uid"] = {"type": "integer", "enum": [class_uid * 100 + a for a in activities]}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://schema.ocsf.io/{version}/classes/{name}",
            "title": f"OCSF {version} {doc['caption']} (class_uid {class_uid})",
            "description": (
                f"Generated by dev/ocsf_schema/generate.py from github.com/ocsf/ocsf-schema "
                f"at {version}, profiles: {', '.join(sorted(self.profiles)) or 'none'}. "
                "OCSF schema: Apache License 2.0."
            ),
            **schema,
            "$defs": dict(sorted(self.defs.items())),
        }

    def _category(self, name: str) -> str:
        doc = self.events[name]
        while "category" not in doc:
            doc = self.events[doc["extends"]]
        return doc["category"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--git-dir", required=True, type=Path, help="git directory of an ocsf-schema clone")
    p.add_argument("--ref", required=True, help="git ref, e.g. v1.1.0")
    p.add_argument("--profiles", default="cloud,datetime", help="comma-separated profiles to apply")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("classes", nargs="+", help="class names, e.g. api_activity authentication")
    args = p.parse_args(argv)
    repo = Repo(args.git_dir, args.ref)
    version = repo.json("version.json")["version"]
    gen = Generator(repo, {s for s in args.profiles.split(",") if s})
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.classes:
        target = args.out / f"{name}.schema.json"
        target.write_text(json.dumps(gen.class_schema(name, version), indent=1, sort_keys=False) + "\n")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
