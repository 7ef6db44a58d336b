"""The package's imports point down: each module imports only from its own layer or a lower one, as the README's
layout section lists them. Read from the code with `ast`, so deferred imports inside functions count too."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minillm"


def readme_layers() -> dict[str, int]:
    """Top-level module (or subpackage) -> its layer number, from the README's numbered list under "## Layout"."""
    layout = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1]
    layers = {}
    for number, names in re.findall(r"^(\d)\. [^:\n]+: (.+)$", layout, flags=re.M):
        for name in re.findall(r"`([\w.]+)`", names):
            assert name not in layers, f"{name} is listed in two layers"
            layers[name] = int(number)
    return layers


def top_module(module: str) -> str:
    """minillm.world.corpus -> world; minillm -> __init__."""
    parts = module.split(".")[1:]
    return parts[0] if parts else "__init__"


def imports(path: Path) -> set[str]:
    """The minillm modules a file imports, anywhere in it (`from minillm import x` counts as minillm.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}: a relative import; write minillm.…"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "minillm":
            found |= ({f"minillm.{a.name}" for a in node.names} if node.module == "minillm" else {node.module})
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "minillm"}
    return found


def upward_imports(files: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """'a (layer i) imports b (layer j)' for each import from a lower layer to a higher one."""
    wrong = []
    for module, targets in sorted(files.items()):
        here = layers[top_module(module)]
        for target in sorted(targets):
            there = layers[top_module(target)]
            if there > here and top_module(target) != top_module(module):
                wrong.append(f"{module} (layer {here}) imports {target} (layer {there})")
    return wrong


def package_imports() -> dict[str, set[str]]:
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[module] = imports(path)
    return files


def test_every_module_has_one_layer():
    layers = readme_layers()
    on_disk = {top_module(m) for m in package_imports()}
    assert on_disk == set(layers), (f"modules without a layer in the README: {sorted(on_disk - set(layers))}; "
                                    f"listed but absent: {sorted(set(layers) - on_disk)}")


def test_imports_point_down():
    assert upward_imports(package_imports(), readme_layers()) == []


def test_an_upward_import_is_found():
    files = {"minillm.model": {"minillm.train", "minillm.generate"}, "minillm.train": {"minillm.model"}}
    assert upward_imports(files, {"generate": 2, "model": 2, "train": 4}) == [
        "minillm.model (layer 2) imports minillm.train (layer 4)"]
