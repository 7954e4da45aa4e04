"""Load and cross-check form files. All errors are collected, never just the first."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from marshmallow import ValidationError

from .schema import FormFileSchema
from .store import check_stores, stored_in_answers


class FormDefError(Exception):
    """Every problem found, each as (file, path, message)."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{f}: {p}: {m}" for f, p, m in problems))


@dataclass(frozen=True)
class FormDefinition:
    id: str
    version: int
    title: dict
    categories: tuple[dict, ...]
    fields: tuple[dict, ...]
    source: str

    def category(self, code: str) -> dict | None:
        return next((c for c in self.categories if c["code"] == code), None)

    def field(self, name: str) -> dict | None:
        return next((f for f in self.fields if f["name"] == name), None)

    def label(self, obj: dict, lang: str) -> str:
        return obj["label"].get(lang) or obj["label"]["zh"]

    def answer_rows(self, answers: dict | None, lang: str) -> list[tuple[str, str]]:
        """An item's extra answers (fields stored in "answers") as (label, text) in the
        form's order; a choice shows its label. Answers this definition does not know
        (a field since removed) follow under their own names. Text, not markup."""
        answers = {k: v for k, v in (answers or {}).items() if v is not None and str(v) != ""}
        rows = []
        for f in self.fields:
            if f["name"] not in answers or not stored_in_answers(f):
                continue
            value = answers.pop(f["name"])
            if f["type"] == "choice":
                choice = next((c for c in f["choices"] if c["value"] == value), None)
                value = self.label(choice, lang) if choice else value
            rows.append((self.label(f, lang), str(value)))
        rows += [(name, str(value)) for name, value in answers.items()]
        return rows


class FormSet(dict):
    """The loaded forms: `forms[id]` and `forms.get(id)` are each form's current (highest)
    version; older versions (kept as files such as forms/hazard.v1.toml) stay loadable,
    so an item is shown with the labels of the version it was made with."""

    def __init__(self, versions: dict[tuple[str, int], FormDefinition]):
        self.versions = dict(versions)
        current = {}
        for (form_id, _version), form in sorted(versions.items()):
            current[form_id] = form          # sorted by version: the last one wins
        super().__init__(current)

    def version(self, form_id: str, version: int | None) -> FormDefinition | None:
        """That exact version, else the form's current one, else None."""
        exact = self.versions.get((form_id, version)) if version is not None else None
        return exact or self.get(form_id)

    def for_item(self, item, default: str = "hazard") -> FormDefinition | None:
        """The definition an item was made with (the current one if it was retired)."""
        return self.version(item.form_id, item.form_version) or self.get(default)


def _flatten(messages, prefix=""):
    """marshmallow's nested error dict → ('fields.3.label.en', 'message') pairs."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = "fields" if key == "fields_" else str(key)
            yield from _flatten(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for m in messages:
            yield prefix or "(file)", m
    else:
        for i, m in enumerate(messages):
            yield from _flatten(m, f"{prefix}.{i}")


def _cross_check(data: dict) -> list[tuple[str, str]]:
    problems = []
    for key, path in (("categories", "code"), ("fields_", "name")):
        seen: dict[str, int] = {}     # value → index of its first entry
        for i, entry in enumerate(data.get(key, [])):
            value = entry[path]
            if value in seen:
                label = "fields" if key == "fields_" else key
                problems.append((f"{label}.{i}.{path}",
                                 f"duplicate '{value}' (first at {label}.{seen[value]})"))
            seen.setdefault(value, i)
    types = [f["type"] for f in data.get("fields_", [])]
    for singleton in ("category", "photos"):
        if types.count(singleton) != 1:
            problems.append(("fields", f"exactly one field of type '{singleton}' is needed, "
                                       f"found {types.count(singleton)}"))
    for i, f in enumerate(data.get("fields_", [])):
        if f["type"] == "category" and not f["required"]:
            problems.append((f"fields.{i}.required", "the category field must be required"))
        if f["type"] == "choice":
            values = [c["value"] for c in f["choices"]]
            if len(values) != len(set(values)):
                problems.append((f"fields.{i}.choices", "choice values must be unique"))
    problems += check_stores(data.get("fields_", []))
    return problems


def load_file(path: Path) -> FormDefinition:
    """Load one file or raise FormDefError with every problem in it."""
    name = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FormDefError([(name, "(file)", f"not valid TOML: {exc}")]) from None
    try:
        data = FormFileSchema().load(raw)
    except ValidationError as exc:
        raise FormDefError([(name, p, m) for p, m in _flatten(exc.messages)]) from None
    problems = _cross_check(data)
    if problems:
        raise FormDefError([(name, p, m) for p, m in problems])
    head = data["form"]
    return FormDefinition(id=head["id"], version=head["version"], title=head["title"],
                          categories=tuple(data["categories"]), fields=tuple(data["fields_"]),
                          source=name)


def load_forms(directory: Path) -> FormSet:
    """Load every forms/*.toml; one FormDefError lists the problems of all files.

    Several files may define one form id with different versions (the highest is the
    current form); the same id and version twice is an error."""
    forms: dict[tuple[str, int], FormDefinition] = {}
    problems: list[tuple[str, str, str]] = []
    files = sorted(Path(directory).glob("*.toml"))
    if not files:
        raise FormDefError([(str(directory), "(dir)", "no *.toml form definitions found")])
    for path in files:
        try:
            form = load_file(path)
        except FormDefError as exc:
            problems.extend(exc.problems)
            continue
        key = (form.id, form.version)
        if key in forms:
            problems.append((str(path), "form.id",
                             f"form id '{form.id}' version {form.version} is also used by "
                             f"{forms[key].source}"))
        forms[key] = form
    if problems:
        raise FormDefError(problems)
    return FormSet(forms)


def check_forms(directory: Path) -> list[tuple[str, str, str]]:
    try:
        load_forms(directory)
    except FormDefError as exc:
        return exc.problems
    return []
