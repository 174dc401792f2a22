"""User code as trainables: a Ray Tune function or ``Trainable`` class, by ``module:name``
or, from the Python API, as the object itself.

The module is looked up in the spec's folder first, then the working directory, then the
installed packages. A name that does not resolve, or resolves to something that is not a
trainable, is a validation error that says which.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import Location, SpecError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from raytuner.workloads import TrainableBuild


def search_path(base_dir: Path) -> list[str]:
    """Folders user modules are imported from, spec folder first."""
    folders = [str(base_dir), str(Path.cwd())]
    return list(dict.fromkeys(folders))


@contextmanager
def _importable(base_dir: Path) -> Iterator[None]:
    added = [p for p in search_path(base_dir) if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)


def resolve(target: Any, base_dir: Path, where: Location) -> Any:
    """Import ``module:name`` (or take the object given instead) and check that it is a trainable.

    Raises:
        SpecError: the module or name does not resolve, or the object is not a trainable.
    """
    if not isinstance(target, str):
        from raytuner.spec.models import object_label

        _check_kind(target, object_label(target), where)
        return target
    module_name, _, attr_path = target.partition(":")
    with _importable(base_dir):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise SpecError(
                    f"cannot import module '{module_name}' (looked in {base_dir}, the working directory "
                    "and installed packages)",
                    where,
                ) from exc
            raise SpecError(f"importing '{module_name}' failed: {exc}", where) from exc
        except Exception as exc:  # noqa: BLE001 - user code can raise anything on import
            raise SpecError(f"importing '{module_name}' failed: {type(exc).__name__}: {exc}", where) from exc
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"module '{module_name}' has no attribute '{attr_path}'", where)
        obj = getattr(obj, part)
    _check_kind(obj, target, where)
    return obj


def _check_kind(obj: Any, target: str, where: Location) -> None:
    if inspect.isclass(obj):
        from ray.tune import Trainable

        if not issubclass(obj, Trainable):
            raise SpecError(f"'{target}' is a class but not a ray.tune.Trainable subclass", where)
        return
    if not callable(obj):
        raise SpecError(
            f"'{target}' is a {type(obj).__name__}; expected a function taking a config dict "
            "or a ray.tune.Trainable subclass",
            where,
        )
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    required = [
        p for p in params.values() if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) > 1 or (not required and not params):
        raise SpecError(
            f"'{target}' takes ({', '.join(params)}); a function trainable takes one argument, the config dict",
            where,
        )


def build(target: Any, base_dir: Path) -> TrainableBuild:
    """The trainable for the Tuner; a class is reused only if it implements ``reset_config``."""
    from raytuner.workloads import TrainableBuild

    obj = resolve(target, base_dir, Location(path="trainable.function"))
    if isinstance(target, str):
        _ship_by_value(target.partition(":")[0], base_dir)
    else:
        _ship_object_by_value(obj)
    if inspect.isclass(obj):
        from ray.tune import Trainable

        reusable = getattr(obj, "reset_config", None) is not Trainable.reset_config
        return TrainableBuild(obj, reusable, obj.__name__)
    return TrainableBuild(obj, True, getattr(obj, "__name__", "trainable"))


def _ship_by_value(module_name: str, base_dir: Path) -> None:
    """Send user code found in the spec's folder or the working directory with the trainable.

    Ray pickles a trainable by reference to its module, so every worker must import that
    module itself: a Ray already running (a notebook, the tests) or a cluster node does not
    have the spec's folder on its path. Code shipped by value needs no import there.
    """
    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    origin = getattr(module, "__file__", None)
    if module is None or origin is None:
        return
    file = Path(origin).resolve()
    for folder in search_path(base_dir):
        root = Path(folder).resolve()
        if file == root / f"{top}.py" or file == root / top / "__init__.py":
            from ray import cloudpickle

            cloudpickle.register_pickle_by_value(module)
            return


def _ship_object_by_value(obj: Any) -> None:
    """Send the module of a trainable given as an object with it, unless it is installed code.

    cloudpickle already ships by value what ``__main__`` (a script, a notebook) or a function
    body defines; a function of a module imported from the user's own folder (a test file, a
    script's helper module) would be pickled by reference, and the workers of a Ray started
    elsewhere cannot import that module.
    """
    import sysconfig

    name = getattr(obj, "__module__", None)
    module = sys.modules.get(name) if name else None
    origin = getattr(module, "__file__", None)
    if module is None or origin is None or name == "__main__":
        return
    installed = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib", "stdlib")}
    if any(folder in Path(origin).resolve().parents for folder in installed):
        return
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(module)


def can_checkpoint(obj: Any) -> bool:
    """Whether a trainable restores checkpoints (PBT needs it).

    A class must override ``load_checkpoint``; a function must call ``get_checkpoint``
    somewhere in its code (nested functions included).
    """
    if inspect.isclass(obj):
        from ray.tune import Trainable

        return getattr(obj, "load_checkpoint", None) is not Trainable.load_checkpoint
    code = getattr(obj, "__code__", None)
    return code is not None and _mentions(code, "get_checkpoint")


def _mentions(code: Any, name: str) -> bool:
    if name in code.co_names:
        return True
    return any(_mentions(const, name) for const in code.co_consts if hasattr(const, "co_names"))
