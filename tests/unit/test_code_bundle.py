"""A version's code: which files a bundle holds, what its digest covers, and snapshots that
import side by side in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrion.errors import SpecError, TaskError
from orchestrion.spec.bundle import (
    CodeBundle,
    bundle_python_file,
    bundle_references,
    project_root,
)
from orchestrion.spec.loading import load_workflows
from orchestrion.worker.snapshots import load_snapshot

WORKFLOW = """\
import helpers
from orchestrion import task, workflow
from pkg import sub
from . import sibling_rel  # a relative import: resolved by the file's folder
import json, os  # the standard library is never bundled
import orchestrion.spec  # nor Orchestrion itself


@task
def a():
    return helpers.tag() + sub.SUB


@workflow
def flow():
    a()
"""


def _project(root: Path, *, tag: str = "one") -> Path:
    (root / "helpers.py").write_text(f"import deep\n\ndef tag():\n    return {tag!r}\n")
    (root / "deep.py").write_text("DEEP = 1\n")
    (root / "pkg").mkdir(exist_ok=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub.py").write_text("SUB = '+sub'\n")
    (root / "sibling_rel.py").write_text("")
    (root / "unused.py").write_text("never imported\n")
    (root / "json.py").write_text("# shadows nothing: the standard library wins\n")
    flow = root / "flow.py"
    flow.write_text(WORKFLOW)
    return flow


def test_a_bundle_holds_the_file_and_every_local_module_it_imports(tmp_path: Path) -> None:
    bundle = bundle_python_file(_project(tmp_path))
    assert sorted(bundle.files) == [
        "deep.py",
        "flow.py",
        "helpers.py",
        "pkg/__init__.py",
        "pkg/sub.py",
        "sibling_rel.py",
    ]
    assert bundle.paths == ("",)


def test_the_digest_covers_every_byte_of_every_file(tmp_path: Path) -> None:
    flow = _project(tmp_path)
    first = bundle_python_file(flow).digest
    assert bundle_python_file(flow).digest == first  # stable
    (tmp_path / "deep.py").write_text("DEEP = 2\n")  # two imports away
    assert bundle_python_file(flow).digest != first
    (tmp_path / "unused.py").write_text("changed\n")  # not imported: not part of it
    second = bundle_python_file(flow).digest
    (tmp_path / "unused.py").write_text("changed again\n")
    assert bundle_python_file(flow).digest == second


def test_two_files_that_differ_only_in_a_task_body_are_two_versions(tmp_path: Path) -> None:
    flow = tmp_path / "body_only.py"
    versions = []
    for body in ("return 1", "return 2"):
        flow.write_text(
            "from orchestrion import task, workflow\n\n"
            f"@task\ndef t():\n    {body}\n\n@workflow\ndef same_name():\n    t()\n"
        )
        [loaded] = load_workflows(flow)
        assert loaded.code is not None and loaded.spec.code == loaded.code.digest
        versions.append(loaded.spec)
    assert versions[0].tasks == versions[1].tasks  # the same graph and refs
    assert versions[0].version != versions[1].version


def test_yaml_references_bundle_the_modules_beside_the_file(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "tasks.py").write_text("import helpers\n\ndef go():\n    return 1\n")
    yaml = tmp_path / "flow.yaml"
    yaml.write_text("")
    refs = ["helpers:tag", "lib/tasks.py:go", "json:dumps", "not_here:fn"]
    bundle = bundle_references(refs, yaml)
    assert bundle is not None
    assert sorted(bundle.files) == ["deep.py", "helpers.py", "lib/tasks.py"]
    assert bundle.paths == ("", "lib")
    assert bundle_references(["json:dumps", "os.path:join"], yaml) is None


def test_a_configured_project_root_must_contain_the_file(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    assert project_root(flows / "w.py", tmp_path) == tmp_path.resolve()
    with pytest.raises(SpecError, match="not inside the project root"):
        project_root(tmp_path / "w.py", flows)


def test_imports_resolve_in_the_files_folder_first_then_the_root(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    (tmp_path / "shared" / "util.py").write_text("ROOT = True\n")
    (flows / "helpers.py").write_text("WHERE = 'flows'\n")
    (tmp_path / "helpers.py").write_text("WHERE = 'root'\n")
    (flows / "w.py").write_text("import helpers\nfrom shared import util\n")
    bundle = bundle_python_file(flows / "w.py", tmp_path.resolve())
    assert sorted(bundle.files) == [
        "flows/helpers.py",
        "flows/w.py",
        "shared/__init__.py",
        "shared/util.py",
    ]
    assert bundle.paths == ("flows", "")
    snapshot = load_snapshot(bundle, tmp_path / "cache")
    assert snapshot.resolve("helpers:WHERE.upper")() == "FLOWS"
    assert snapshot.resolve("shared.util:ROOT.__bool__")() is True


def _bundle(tag: str) -> CodeBundle:
    return CodeBundle(
        {
            "pin.py": b"import helpers\n\ndef a():\n    return helpers.tag()\n"
            b"\ndef later():\n    import helpers as h\n    return h.tag()\n",
            "helpers.py": f"def tag():\n    return {tag!r}\n".encode(),
        },
        ("",),
    )


def test_two_versions_of_the_same_modules_import_side_by_side(tmp_path: Path) -> None:
    one = load_snapshot(_bundle("v1"), tmp_path)
    two = load_snapshot(_bundle("v2"), tmp_path)
    assert one.resolve("pin:a")() == "v1"
    assert two.resolve("pin:a")() == "v2"
    # an import run inside a function, at call time, still finds its own version's module
    assert one.resolve("pin:later")() == "v1"
    assert two.resolve("pin:later")() == "v2"
    # written once per digest, under its digest
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [_bundle("v1").digest, _bundle("v2").digest]
    )
    assert load_snapshot(_bundle("v1"), tmp_path) is one


def test_a_missing_function_names_the_reference(tmp_path: Path) -> None:
    snapshot = load_snapshot(_bundle("v3"), tmp_path)
    with pytest.raises(TaskError, match="'pin:nope': 'pin' has no attribute 'nope'"):
        snapshot.resolve("pin:nope")
    assert snapshot.resolve("json:dumps")([1]) == "[1]"  # not in the snapshot: the environment


def test_wire_form_round_trips_and_refuses_paths_outside_the_root() -> None:
    bundle = _bundle("wire")
    again = CodeBundle.from_wire(bundle.to_wire())
    assert again.digest == bundle.digest
    for bad in ("../x.py", "/etc/x.py", "a/../../x.py", "x.txt", "a\\b.py", ""):
        with pytest.raises(SpecError):
            CodeBundle.from_wire({"paths": [""], "files": {bad: ""}})
    with pytest.raises(SpecError):
        CodeBundle.from_wire({"paths": ["../up"], "files": {"a.py": ""}})
    with pytest.raises(SpecError):
        CodeBundle.from_wire({"paths": [""], "files": {"a.py": ""}, "extra": 1})


def test_a_lambda_condition_resolves_from_the_snapshot(tmp_path: Path) -> None:
    """No attribute path reaches a lambda: the snapshot finds it among its workflows'
    callables, as the loader registered it."""
    flow = tmp_path / "lambdas.py"
    flow.write_text(
        "from orchestrion import task, workflow\n\n"
        "@task(when=lambda params: params['go'] == 'yes')\ndef maybe():\n    return 1\n\n"
        "@workflow\ndef lambdas(go: str = 'yes'):\n    maybe()\n"
    )
    [loaded] = load_workflows(flow)
    [task] = loaded.spec.tasks
    assert task.when is not None and task.when.ref == "lambdas:<lambda>"
    assert loaded.code is not None
    snapshot = load_snapshot(loaded.code, tmp_path / "cache")
    condition = snapshot.resolve(task.when.ref)
    assert condition(params={"go": "yes"}) is True
    assert condition(params={"go": "no"}) is False
