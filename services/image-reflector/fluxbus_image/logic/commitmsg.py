"""Commit messages of image updates: Flux's template data and default template.

Pure: no I/O.

`template_data(...)` builds the value image-automation-controller hands to
`spec.git.commit.messageTemplate` (internal/source TemplateData):

    .AutomationObject            types.NamespacedName; prints "namespace/name"
    .Changed.FileChanges         map[file]map[ObjectIdentifier][]Change
    .Changed.Changes             method: every distinct Change
    .Changed.Objects             method: map[ObjectIdentifier][]Change over all files
    .Values                      spec.git.commit.messageTemplateValues
    ObjectIdentifier             .APIVersion .Kind .Name .Namespace (kyaml's embedded
                                 TypeMeta{APIVersion, Kind} and NameMeta{Name, Namespace})
    Change                       .OldValue .NewValue .Setter

Maps range in Go's key order (object identifiers field by field). Where Flux
iterates Go maps in random order (`Changes`, the change order of `Objects`
across files), fluxbus uses file order. `commit_message` renders with the
template name Flux uses ("commit message") and maps the removed `.Updated` and
`.Changed.ImageResult` fields to Flux's explanatory errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fluxbus_image.logic.gotemplate import TemplateError, render
from fluxbus_image.logic.setters import Change

__all__ = [
    "DEFAULT_MESSAGE_TEMPLATE",
    "TEMPLATE_NAME",
    "NamespacedName",
    "ObjectIdentifier",
    "RemovedTemplateFieldError",
    "Result",
    "TemplateChange",
    "TemplateData",
    "commit_message",
    "template_data",
]

DEFAULT_MESSAGE_TEMPLATE = "Update from image update automation"
TEMPLATE_NAME = "commit message"
DOCS_URL = "https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template"


@dataclass(frozen=True)
class NamespacedName:
    """types.NamespacedName, a fmt.Stringer."""

    __go_type__ = "types.NamespacedName"
    Namespace: str
    Name: str

    def String(self) -> str:
        return f"{self.Namespace}/{self.Name}"


@dataclass(frozen=True)
class TypeMeta:
    __go_type__ = "yaml.TypeMeta"
    APIVersion: str = ""
    Kind: str = ""


@dataclass(frozen=True)
class NameMeta:
    __go_type__ = "yaml.NameMeta"
    Name: str = ""
    Namespace: str = ""


@dataclass(frozen=True)
class ResourceIdentifier:
    __go_type__ = "yaml.ResourceIdentifier"
    __go_embedded__ = ("TypeMeta", "NameMeta")
    TypeMeta: TypeMeta = field(default_factory=TypeMeta)
    NameMeta: NameMeta = field(default_factory=NameMeta)


@dataclass(frozen=True)
class ObjectIdentifier:
    """update.ObjectIdentifier: the object a change was made in (maybe nameless)."""

    __go_type__ = "update.ObjectIdentifier"
    __go_embedded__ = ("ResourceIdentifier",)
    ResourceIdentifier: ResourceIdentifier = field(default_factory=ResourceIdentifier)

    @classmethod
    def of(cls, api_version: str, kind: str, name: str, namespace: str) -> ObjectIdentifier:
        return cls(ResourceIdentifier(TypeMeta(api_version, kind), NameMeta(name, namespace)))


@dataclass(frozen=True)
class TemplateChange:
    """update.Change."""

    __go_type__ = "update.Change"
    OldValue: str
    NewValue: str
    Setter: str


ObjectChanges = dict[ObjectIdentifier, list[TemplateChange]]


@dataclass
class Result:
    """update.Result with its two helper methods."""

    __go_type__ = "update.Result"
    FileChanges: dict[str, ObjectChanges] = field(default_factory=dict)

    def Changes(self) -> list[TemplateChange]:
        """Every distinct change, in file order."""
        seen: dict[TemplateChange, None] = {}
        for file in sorted(self.FileChanges):
            for changes in self.FileChanges[file].values():
                seen.update(dict.fromkeys(changes))
        return list(seen)

    def Objects(self) -> ObjectChanges:
        """The changes per object, whatever file they are in."""
        result: ObjectChanges = {}
        for file in sorted(self.FileChanges):
            for obj, changes in self.FileChanges[file].items():
                result.setdefault(obj, []).extend(changes)
        return result


@dataclass
class TemplateData:
    """source.TemplateData."""

    __go_type__ = "source.TemplateData"
    AutomationObject: NamespacedName
    Changed: Result
    Values: dict[str, str]


class RemovedTemplateFieldError(TemplateError):
    """The template uses a field Flux removed; the message says what to use instead."""

    def __init__(self, field_name: str) -> None:
        self.field = field_name
        if field_name == ".Updated":
            hint = "Please use '.Changed' instead. "
        else:
            hint = "Please use '.Changed.FileChanges' or '.Changed.Objects' instead. "
        super().__init__(f"template uses removed '{field_name}' field. {hint}See: {DOCS_URL}")


_REMOVED = (
    (".Updated", "can't evaluate field Updated in type source.TemplateData"),
    (".Changed.ImageResult", "can't evaluate field ImageResult in type update.Result"),
)


def template_data(
    automation_name: str,
    automation_namespace: str,
    update: Iterable[Change],
    values: Mapping[str, str] | None,
    *,
    update_path: str = "",
) -> TemplateData:
    """The commit message template's data for the changes the setters made.

    File names are as the changes carry them; with `update_path` they are made
    relative to it, as Flux's are (it scans from `spec.update.path`).
    """
    prefix = update_path.strip("/") + "/" if update_path.strip("/") else ""
    files: dict[str, ObjectChanges] = {}
    for change in update:
        name = change.file.removeprefix(prefix) if prefix else change.file
        obj = change.object
        key = ObjectIdentifier.of(obj.api_version, obj.kind, obj.name, obj.namespace)
        entry = TemplateChange(change.old_value, change.new_value, change.setter)
        files.setdefault(name, {}).setdefault(key, []).append(entry)
    return TemplateData(
        NamespacedName(automation_namespace, automation_name),
        Result(files),
        dict(values or {}),
    )


def commit_message(template: str | None, data: TemplateData) -> str:
    """Render the commit message (Flux's default when the template is None or empty).

    Raises `RemovedTemplateFieldError` for a template using a removed field and
    `TemplateError` for any other parse or execution error.
    """
    try:
        return render(template or DEFAULT_MESSAGE_TEMPLATE, data, name=TEMPLATE_NAME)
    except TemplateError as e:
        for field_name, pattern in _REMOVED:
            if pattern in str(e):
                raise RemovedTemplateFieldError(field_name) from e
        raise
