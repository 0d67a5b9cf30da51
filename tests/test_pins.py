"""Every package the README's install commands bring in is pinned: constraints.txt holds each
distribution of the requirements files' dependency closure, as installed here, and every
requirements file applies it (so requirements.txt alone and the test install agree on, say, pillow)."""
import glob
import importlib.metadata as metadata
import os

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

CONSTRAINTS = "constraints.txt"


def lines(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]


def requirements(path):
    """The Requirements of a requirements file, following its -r includes."""
    found = []
    for line in lines(path):
        if line.startswith("-r "):
            found += requirements(line.split()[1])
        elif not line.startswith("-"):
            found.append(Requirement(line))
    return found


def installed_closure(roots):
    """{name: installed version} of `roots` and everything they require here (markers evaluated)."""
    todo, found = list(roots), {}
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        dist = metadata.distribution(requirement.name)
        found[name] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return found


def test_every_requirements_file_applies_the_constraints():
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "requirements*.txt")))
    assert "requirements.txt" in files
    assert [f for f in files if f"-c {CONSTRAINTS}" not in lines(f)] == []


def test_constraints_pin_every_installed_dependency_at_its_version():
    pins = {}
    for line in lines(CONSTRAINTS):
        name, version = line.split("==")
        pins[canonicalize_name(name)] = version
    roots = [r for f in glob.glob(os.path.join(ROOT, "requirements*.txt")) for r in requirements(os.path.basename(f))]
    closure = installed_closure(roots)
    assert {name: version for name, version in closure.items() if pins.get(name) != version} == {}
    assert sorted(set(pins) - set(closure)) == []  # nothing pinned that the requirements do not bring
    # the requirement files' own pins agree with it
    assert [str(r) for r in roots if r.specifier and not r.specifier.contains(pins[canonicalize_name(r.name)])] == []
